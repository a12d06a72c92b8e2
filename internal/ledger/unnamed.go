package ledger

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// Unnamed returns the documents whose hostname is empty, null or missing,
// which Records skips. 1.x's --change-master blanks the old master's
// hostname, then the new master's, before it renames them: a 1.x client
// that died between those writes (a plain unique index refuses the second
// "") leaves its instance's document so. To 1.x's own code such an
// instance holds no name (get_hostname is falsy; it registers again) and
// its updater writes the document's ip with no hostname. Each Document's
// Record carries the service, scheme, instance, ip and rev read; Hostname
// is "". The error is a failed or incomplete read.
func (m *Mongo) Unnamed(ctx context.Context) ([]Document, error) {
	filter := bson.D{{Key: "hostname", Value: bson.D{{Key: "$in", Value: bson.A{"", nil}}}}}
	cur, err := m.servers.Find(ctx, filter, options.Find().SetBatchSize(5000))
	if err != nil {
		return nil, fmt.Errorf("reading documents without a hostname: %w", err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	var docs []Document
	for cur.Next(ctx) {
		raw := slices.Clone(cur.Current)
		str := func(field string) string {
			s, _ := raw.Lookup(field).StringValueOK()
			return s
		}
		rec := naming.Record{Service: str("service"), InstanceID: str("instance_id"), IP: str("ip"), Scheme: naming.Iterative}
		if s, err := naming.ParseScheme(str("service_type")); err == nil {
			rec.Scheme = s
		}
		rec.Rev, _ = intValue(raw.Lookup("rev"))
		docs = append(docs, Document{Record: rec, ID: docID(raw), id: raw.Lookup("_id")})
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("reading documents without a hostname: %w", err)
	}
	slices.SortFunc(docs, func(a, b Document) int { return strings.Compare(a.ID, b.ID) })
	return docs, nil
}
