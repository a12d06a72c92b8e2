package ledger

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// writeProbeID is the _id of a meta document that is never created: the
// credentials probe updates it without upsert and with only
// $setOnInsert, so it writes nothing whether or not the server allows it.
const writeProbeID = "aerostat-credentials-probe"

// codeUnauthorized is MongoDB's error code for an operation the
// authenticated user has no privilege for.
const codeUnauthorized = 13

// CredentialsCanWrite reports whether the connection's credentials may
// write the ledger, by asking the server to run an update that changes
// nothing: MongoDB checks the update privilege before it looks for the
// document, so a user holding only the read role is refused with
// Unauthorized, and anyone else is not. It works on a ledger opened
// ReadOnly (that flag only stops this process from writing; this asks what
// a stolen copy of its credentials could do). A store without users (the
// embedded store, a mongod without --auth) lets every client write.
// Errors: the server could not be asked (down, timed out), or answered
// with something other than success or Unauthorized.
func (m *Mongo) CredentialsCanWrite(ctx context.Context) (bool, error) {
	_, err := m.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: writeProbeID}},
		bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "probe", Value: true}}}})
	var se mongo.ServerError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &se) && se.HasErrorCode(codeUnauthorized):
		return false, nil
	default:
		return false, fmt.Errorf("checking whether the ledger credentials can write: %w", err)
	}
}
