package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // the driver FerretDB itself uses (database/sql name "sqlite")
)

// FerretDB v1 on SQLite pushes a filter that is exactly {_id: X} down as
// WHERE _ferretdb_sjson->'$._id' = ?, but the unique index it builds for
// _id is on _ferretdb_sjson->"_id", a different expression, so SQLite
// walks the table and parses every row's JSON (measured: half the CPU of
// a compare-and-set among 10,000 names). idIndexer adds, next to
// FerretDB's own, an index on exactly the expression FerretDB queries.
// It is an ordinary SQLite index on a table this process's store owns:
// SQLite keeps it current on every write and drops it with the table;
// FerretDB neither lists nor needs it (its metadata does not name it), and
// a store without it is only slower.
type idIndexer struct {
	dir string

	mu   sync.Mutex
	done map[string]bool // "db.collection" known to have the index
}

const (
	// ferretMeta is FerretDB's table of collections in each database file.
	ferretMeta = "_ferretdb_collections"
	// idExpr must stay the text of FerretDB's metadata.IDColumn: SQLite
	// uses an expression index only for the same expression.
	idExpr = `_ferretdb_sjson->'$._id'`
)

// ensure makes sure collection coll of database db has the index, once it
// exists. Errors are the caller's to log: the store works without it.
func (x *idIndexer) ensure(ctx context.Context, db, coll string) error {
	key := db + "." + coll
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done[key] || db == "" || coll == "" {
		return nil
	}
	u := url.URL{Scheme: "file", Path: filepath.Join(x.dir, db+".sqlite"),
		RawQuery: "mode=rw&_pragma=busy_timeout(10000)"}
	conn, err := sql.Open("sqlite", u.String())
	if err != nil {
		return fmt.Errorf("opening %s: %w", u.Path, err)
	}
	defer conn.Close()
	var table string
	err = conn.QueryRowContext(ctx, fmt.Sprintf("SELECT table_name FROM %q WHERE name = ?", ferretMeta), coll).Scan(&table)
	if err == sql.ErrNoRows {
		return nil // not created yet: the next write tries again
	}
	if err != nil {
		return fmt.Errorf("looking up collection %s: %w", key, err)
	}
	q := fmt.Sprintf("CREATE INDEX IF NOT EXISTS %q ON %q (%s)", table+"_aerostat_id", table, idExpr)
	if _, err := conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("indexing %s by _id: %w", key, err)
	}
	if x.done == nil {
		x.done = map[string]bool{}
	}
	x.done[key] = true
	return nil
}

// dropping commands make the tables of their database anew.
var dropping = map[string]bool{"drop": true, "dropDatabase": true, "renameCollection": true}

// forget drops what ensure knows of database db.
func (x *idIndexer) forget(db string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for k := range x.done {
		if strings.HasPrefix(k, db+".") {
			delete(x.done, k)
		}
	}
}
