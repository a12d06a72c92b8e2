package ledger

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

const hostnameIndex = "hostname_unique"

// Server error codes ensureHostnameIndex tells apart.
const (
	codeIndexOptionsConflict  = 85
	codeIndexKeySpecsConflict = 86
	codeNotImplemented        = 238 // FerretDB: index option not implemented
)

// ensureHostnameIndex builds the unique index on hostname that makes a new
// name a plain insert and refuses a second holder of any name.
//
// 1.x's --change-master sets the old master's hostname to "" and then the
// new master's to "" before renaming it, so two documents hold "" for a
// moment. Where the server has partial indexes (MongoDB) the index
// ignores empty hostnames (partialFilterExpression hostname > ""), and
// 1.x's change-master runs through; an older plain index of the same name
// is replaced. FerretDB v1 (the embedded store) has no partial indexes
// (it answers NotImplemented), so there the index is a plain unique one:
// 1.x's second "" write is refused. 1.x itself wrote through
// pymongo.Connection, unacknowledged, so it never saw that error and its
// change-master still completes (the refused write is an intermediate
// step); a client with acknowledged writes dies half-way with the old
// master's hostname "". Either way the controller repairs documents with
// an empty hostname or a stale role (RepairLegacy), and the migration
// guide tells operators to use `aerostat promote` instead.
//
// It returns whether the index was built partial.
func (m *Mongo) ensureHostnameIndex(ctx context.Context) (partial bool, err error) {
	keys := bson.D{{Key: "hostname", Value: 1}}
	partialOpts := options.Index().SetUnique(true).SetName(hostnameIndex).
		SetPartialFilterExpression(bson.D{{Key: "hostname", Value: bson.D{{Key: "$gt", Value: ""}}}})
	_, err = m.servers.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys, Options: partialOpts})
	var se mongo.ServerError
	if err != nil && errors.As(err, &se) && (se.HasErrorCode(codeIndexOptionsConflict) || se.HasErrorCode(codeIndexKeySpecsConflict)) {
		// A plain index from an earlier Aerostat 2: replace it.
		if derr := m.servers.Indexes().DropOne(ctx, hostnameIndex); derr != nil {
			return false, fmt.Errorf("replacing the unique index on hostname with a partial one: %w", derr)
		}
		_, err = m.servers.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys, Options: partialOpts})
	}
	if err == nil {
		m.hostnameUnique.Store(true)
		return true, nil
	}
	if !errors.As(err, &se) || !se.HasErrorCode(codeNotImplemented) {
		return false, err
	}
	_, err = m.servers.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys,
		Options: options.Index().SetUnique(true).SetName(hostnameIndex)})
	if err != nil {
		return false, err
	}
	m.hostnameUnique.Store(true)
	return false, nil
}
