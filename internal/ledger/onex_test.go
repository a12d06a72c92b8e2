package ledger_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// TestWritesKeepOnexFields: every kind of write leaves the six fields 1.x
// clients index directly, with 1.x's types; a new name without aliases
// included (FerretDB drops empty arrays and nulls from an upsert's
// $setOnInsert, and 1.x's updater dies on item['aliases']).
func TestWritesKeepOnexFields(t *testing.T) {
	ctx := context.Background()
	m := ledgertest.New(t)
	if _, err := m.Apply(ctx, []naming.Change{bind("web-0", 0, "i-1", "10.0.0.1")}); err != nil {
		t.Fatal(err)
	}
	check := func(step string) {
		t.Helper()
		var doc bson.Raw
		if err := servers(m).FindOne(ctx, bson.D{{Key: "hostname", Value: "web-0"}}).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"hostname", "ip", "service", "service_type", "instance_id"} {
			if v, err := doc.LookupErr(f); err != nil || v.Type != bson.TypeString {
				t.Errorf("after %s: %s is %v (%v), want a string: %s", step, f, v.Type, err, doc)
			}
		}
		if v, err := doc.LookupErr("aliases"); err != nil || v.Type != bson.TypeArray {
			t.Errorf("after %s: aliases is %v (%v), want an array: %s", step, v.Type, err, doc)
		}
	}
	check("bind")
	recs, err := m.Records(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(ctx, []naming.Change{{Type: naming.Release, Hostname: "web-0", ExpectExists: true,
		ExpectInstanceID: "i-1", ExpectRev: recs[0].Rev}}); err != nil {
		t.Fatal(err)
	}
	check("release")
}
