package ledger

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// Change log internals, for the trimming and window tests.
const (
	ChangeBucket = changeBucket
	ChangeKeep   = changeKeep
	ChangeWindow = changeWindow
)

func (m *Mongo) LogDocs(ctx context.Context, docs ...bson.Raw) error { return m.logChanges(ctx, docs) }

// SortRecords sorts recs as Records returns them, for tests comparing a
// copy with the store.
func SortRecords(recs []naming.Record) []naming.Record { sortRecords(recs); return recs }

// PreferDuplicate is the rule a full read keeps one record a hostname by.
func PreferDuplicate(r, prev *naming.Record) bool { return preferDuplicate(r, prev) }

// RecordChunk is how many records a walked full read allocates at a time.
const RecordChunk = recordChunk
