package ledger

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestDecodeRecord(t *testing.T) {
	tests := map[string]struct {
		doc     bson.D
		ok      bool
		host    string
		ordinal int
		aliases int
		probs   int
	}{
		"1.x iterative":     {bson.D{{Key: "hostname", Value: "web-12"}, {Key: "service", Value: "web"}, {Key: "aliases", Value: bson.A{"a"}}}, true, "web-12", 12, 1, 0},
		"aliases string":    {bson.D{{Key: "hostname", Value: "web-1"}, {Key: "service", Value: "web"}, {Key: "aliases", Value: "a, b c"}}, true, "web-1", 1, 3, 0},
		"aliases number":    {bson.D{{Key: "hostname", Value: "web-1"}, {Key: "service", Value: "web"}, {Key: "aliases", Value: 3}}, true, "web-1", 1, 0, 1},
		"ordinal as double": {bson.D{{Key: "hostname", Value: "web-1"}, {Key: "ordinal", Value: 4.0}}, true, "web-1", 4, 0, 0},
		"ordinal bad":       {bson.D{{Key: "hostname", Value: "x"}, {Key: "ordinal", Value: "four"}}, true, "x", 0, 0, 1},
		"unknown type":      {bson.D{{Key: "hostname", Value: "web-1"}, {Key: "service_type", Value: "roundrobin"}}, true, "web-1", 0, 0, 1},
		"null hostname":     {bson.D{{Key: "hostname", Value: nil}}, false, "", 0, 0, 1},
		"numeric hostname":  {bson.D{{Key: "hostname", Value: 5}}, false, "", 0, 0, 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			raw, err := bson.Marshal(tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			rec, probs, ok := decodeRecord(raw)
			if ok != tc.ok || rec.Hostname != tc.host || rec.Ordinal != tc.ordinal || len(rec.Aliases) != tc.aliases || len(probs) != tc.probs {
				t.Errorf("decodeRecord = %+v, %q, %v", rec, probs, ok)
			}
		})
	}
}

// Corrupt documents must never panic the reader.
func FuzzDecodeRecord(f *testing.F) {
	for _, d := range []bson.D{
		{{Key: "hostname", Value: "web-0"}, {Key: "service", Value: "web"}, {Key: "aliases", Value: bson.A{"a", 1}}},
		{{Key: "hostname", Value: "db-slave-2"}, {Key: "service_type", Value: "masterful"}, {Key: "rev", Value: int32(3)}},
		{{Key: "updated_at", Value: "yesterday"}, {Key: "ordinal", Value: 1e300}},
	} {
		raw, _ := bson.Marshal(d)
		f.Add([]byte(raw))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if bson.Raw(data).Validate() != nil {
			return
		}
		rec, _, ok := decodeRecord(data)
		if ok && rec.Hostname == "" {
			t.Errorf("accepted a record without hostname")
		}
	})
}
