package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func raw(t testing.TB, d bson.D) bson.Raw {
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMatches(t *testing.T) {
	doc := bson.D{{Key: "hostname", Value: "web-0"}, {Key: "rev", Value: int64(3)}, {Key: "n32", Value: int32(3)},
		{Key: "gone", Value: nil}, {Key: "aliases", Value: bson.A{"a"}}, {Key: "sub", Value: bson.D{{Key: "x", Value: 1}}}}
	noRev := bson.A{bson.D{{Key: "rev", Value: int64(0)}}, bson.D{{Key: "rev", Value: bson.D{{Key: "$exists", Value: false}}}}}
	tests := map[string]struct {
		filter bson.D
		want   bool
		unsure bool
	}{
		"equal string":         {filter: bson.D{{Key: "hostname", Value: "web-0"}}, want: true},
		"other string":         {filter: bson.D{{Key: "hostname", Value: "web-1"}}},
		"string is not int":    {filter: bson.D{{Key: "hostname", Value: int64(0)}}},
		"int64 equal":          {filter: bson.D{{Key: "rev", Value: int64(3)}}, want: true},
		"int32 = int64":        {filter: bson.D{{Key: "n32", Value: int64(3)}}, want: true},
		"double = int64":       {filter: bson.D{{Key: "rev", Value: 3.0}}, want: true},
		"int64 differs":        {filter: bson.D{{Key: "rev", Value: int64(4)}}},
		"missing field":        {filter: bson.D{{Key: "nope", Value: "x"}}},
		"null matches missing": {filter: bson.D{{Key: "nope", Value: nil}}, want: true},
		"null matches null":    {filter: bson.D{{Key: "gone", Value: nil}}, want: true},
		"null is not a value":  {filter: bson.D{{Key: "rev", Value: nil}}},
		"exists":               {filter: bson.D{{Key: "rev", Value: bson.D{{Key: "$exists", Value: true}}}}, want: true},
		"not exists":           {filter: bson.D{{Key: "rev", Value: bson.D{{Key: "$exists", Value: false}}}}},
		"or, no branch":        {filter: bson.D{{Key: "$or", Value: noRev}}},
		"or with and":          {filter: bson.D{{Key: "hostname", Value: "web-0"}, {Key: "$or", Value: bson.A{bson.D{{Key: "rev", Value: int64(3)}}}}}, want: true},
		"all must hold":        {filter: bson.D{{Key: "hostname", Value: "web-0"}, {Key: "rev", Value: int64(2)}}},
		"array field":          {filter: bson.D{{Key: "aliases", Value: "a"}}, unsure: true},
		"document field":       {filter: bson.D{{Key: "sub", Value: "a"}}, unsure: true},
		"operator":             {filter: bson.D{{Key: "rev", Value: bson.D{{Key: "$gt", Value: 1}}}}, unsure: true},
		"dotted path":          {filter: bson.D{{Key: "sub.x", Value: 1}}, unsure: true},
		"top-level operator":   {filter: bson.D{{Key: "$and", Value: bson.A{}}}, unsure: true},
		"array value":          {filter: bson.D{{Key: "hostname", Value: bson.A{"web-0"}}}, unsure: true},
		"or, one unsure":       {filter: bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "rev", Value: int64(3)}}, bson.D{{Key: "aliases", Value: "a"}}}}}, unsure: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := matches(raw(t, doc), raw(t, tc.filter))
			if tc.unsure {
				if !errors.Is(err, errUnsure) {
					t.Errorf("matches = %v, %v; want errUnsure", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("matches = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestPlanByID(t *testing.T) {
	oid := bson.NewObjectID()
	tests := map[string]struct {
		body bson.D
		want bool
	}{
		"id and more": {body: bson.D{{Key: "findAndModify", Value: "servers"}, {Key: "query", Value: bson.D{{Key: "_id", Value: oid}, {Key: "rev", Value: int64(1)}}},
			{Key: "update", Value: bson.D{}}, {Key: "$db", Value: "aerostat"}}, want: true},
		"string id": {body: bson.D{{Key: "findAndModify", Value: "servers"}, {Key: "query", Value: bson.D{{Key: "rev", Value: int64(1)}, {Key: "_id", Value: "x"}}},
			{Key: "$db", Value: "aerostat"}}, want: true},
		"id alone is pushed down already": {body: bson.D{{Key: "findAndModify", Value: "servers"}, {Key: "query", Value: bson.D{{Key: "_id", Value: oid}}},
			{Key: "$db", Value: "aerostat"}}},
		"no id": {body: bson.D{{Key: "findAndModify", Value: "servers"}, {Key: "query", Value: bson.D{{Key: "hostname", Value: "a"}, {Key: "rev", Value: int64(1)}}},
			{Key: "$db", Value: "aerostat"}}},
		"id operator": {body: bson.D{{Key: "findAndModify", Value: "servers"}, {Key: "query", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{oid}}}}, {Key: "rev", Value: int64(1)}}},
			{Key: "$db", Value: "aerostat"}}},
		"upsert": {body: bson.D{{Key: "findAndModify", Value: "servers"}, {Key: "query", Value: bson.D{{Key: "_id", Value: oid}, {Key: "rev", Value: int64(1)}}},
			{Key: "upsert", Value: true}, {Key: "$db", Value: "aerostat"}}},
		"update command": {body: bson.D{{Key: "update", Value: "servers"}, {Key: "$db", Value: "aerostat"}}},
		"no db":          {body: bson.D{{Key: "findAndModify", Value: "servers"}, {Key: "query", Value: bson.D{{Key: "_id", Value: oid}, {Key: "rev", Value: int64(1)}}}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, ok := planByID(buildMsg(t, 0, tc.body))
			if ok != tc.want {
				t.Fatalf("planByID ok = %v, want %v", ok, tc.want)
			}
			if ok && p.rest.Lookup("_id").Type != 0 {
				t.Errorf("rest %v still holds _id", p.rest)
			}
		})
	}
	if _, ok := planByID(buildMsg(t, flagMoreToCome, tests["id and more"].body)); ok {
		t.Error("planByID split a message with flags set")
	}
}

// The proxy parses what any local client sends; garbage must not panic it.
func FuzzPlanByID(f *testing.F) {
	f.Add(buildMsg(f, 0, bson.D{{Key: "findAndModify", Value: "servers"},
		{Key: "query", Value: bson.D{{Key: "_id", Value: "a"}, {Key: "$or", Value: bson.A{bson.D{{Key: "rev", Value: nil}}}}}}, {Key: "$db", Value: "d"}}))
	f.Add([]byte{26, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xdd, 7, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 16 {
			return
		}
		p, ok := planByID(data)
		if ok {
			_, _ = matches(raw(t, bson.D{{Key: "rev", Value: int64(1)}}), p.rest)
		}
	})
}

// Through the proxy, a findAndModify filtered by _id and more is one
// exact-_id read and, when the rest matches, one exact-_id write; of
// many concurrent compare-and-sets on one document exactly one wins.
func TestCompareAndSetByID(t *testing.T) {
	ctx := context.Background()
	var (
		qmu     sync.Mutex
		queries []Query
	)
	_, c := startAndConnect(t, Options{Listen: "127.0.0.1:0", QueryLog: func(q Query) {
		qmu.Lock()
		queries = append(queries, q)
		qmu.Unlock()
	}})
	coll := c.Database("byid").Collection("servers")
	id := bson.NewObjectID()
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "hostname", Value: "web-0"}, {Key: "instance_id", Value: ""}}); err != nil {
		t.Fatal(err)
	}
	qmu.Lock()
	queries = nil
	qmu.Unlock()

	const n = 20
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		wins []string
		errs []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			me := fmt.Sprint("i-", i)
			// No rev yet, as on a 1.x document: the ledger's $or form.
			filter := bson.D{{Key: "_id", Value: id}, {Key: "hostname", Value: "web-0"}, {Key: "instance_id", Value: ""},
				{Key: "$or", Value: bson.A{bson.D{{Key: "rev", Value: int64(0)}}, bson.D{{Key: "rev", Value: bson.D{{Key: "$exists", Value: false}}}}}}}
			var doc struct {
				InstanceID string `bson:"instance_id"`
			}
			err := coll.FindOneAndUpdate(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "instance_id", Value: me}, {Key: "rev", Value: int64(1)}}}},
				options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&doc)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, mongo.ErrNoDocuments):
			case err != nil:
				errs = append(errs, err)
			case doc.InstanceID != me:
				errs = append(errs, fmt.Errorf("%s got post-image of %s", me, doc.InstanceID))
			default:
				wins = append(wins, me)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("compare-and-sets failed: %v", errs)
	}
	if len(wins) != 1 {
		t.Fatalf("%d concurrent compare-and-sets won (%v), want 1", len(wins), wins)
	}
	var got struct {
		InstanceID string `bson:"instance_id"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&got); err != nil || got.InstanceID != wins[0] {
		t.Errorf("stored instance %q (%v), want the winner %s", got.InstanceID, err, wins[0])
	}
	qmu.Lock()
	finds, writes := 0, 0
	for _, q := range queries {
		if q.Collection != "servers" {
			continue
		}
		if !q.ExactID {
			t.Errorf("FerretDB received a scanning %s", q.Command)
		}
		switch q.Command {
		case "find":
			finds++
		case "findAndModify":
			writes++
		}
	}
	// The last find is this test's own read.
	if finds != n+1 || writes != 1 {
		t.Errorf("exact-_id commands: %d find, %d findAndModify; want %d and 1", finds, writes, n+1)
	}
	qmu.Unlock()

	// A filter the proxy cannot decide is FerretDB's to answer: still right.
	err := coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}, {Key: "rev", Value: bson.D{{Key: "$gt", Value: int64(0)}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "ip", Value: "10.0.0.1"}}}}).Err()
	if err != nil {
		t.Errorf("forwarded findAndModify: %v", err)
	}
	qmu.Lock()
	defer qmu.Unlock()
	if last := queries[len(queries)-1]; last.Command != "findAndModify" || last.ExactID {
		t.Errorf("last query %+v, want the forwarded (scanning) findAndModify", last)
	}
}

// A collection written through the proxy gets the index on FerretDB's own
// _id expression, and SQLite answers FerretDB's exact-_id query with it
// instead of walking the table (the plan names the index).
func TestExactIDQueryUsesIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, c := startAndConnect(t, Options{DataDir: dir, Listen: "127.0.0.1:0"})
	if _, err := c.Database("idx").Collection("servers").InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}, {Key: "hostname", Value: "web-0"}}); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "idx.sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table string
	if err := db.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = 'servers'`).Scan(&table); err != nil {
		t.Fatalf("finding the servers table: %v", err)
	}
	// The WHERE clause FerretDB v1 builds for {_id: X}
	// (backends/sqlite/collection.go, metadata.IDColumn).
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table), `"a"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := "USING INDEX " + table + "_aerostat_id"
	if len(plan) != 1 || !strings.Contains(plan[0], want) {
		t.Errorf("query plan %q, want one step %s", plan, want)
	}
}
