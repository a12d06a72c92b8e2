package ledger

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Change log internals, for the trimming and window tests.
const (
	ChangeBucket = changeBucket
	ChangeKeep   = changeKeep
	ChangeWindow = changeWindow
)

func (m *Mongo) LogDocs(ctx context.Context, docs ...bson.Raw) error { return m.logChanges(ctx, docs) }
