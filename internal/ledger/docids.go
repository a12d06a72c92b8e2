package ledger

import (
	"go.mongodb.org/mongo-driver/v2/bson"
)

// docIDs remembers the _id of each hostname's document, learnt from every
// document this ledger reads or writes, so that a compare-and-set can
// name its document by _id (see write). A stale entry (a 1.x client
// deleted and re-inserted a name) costs one lost compare-and-set: the
// entry is dropped and the retry filters by hostname.
type docIDs struct {
	byHost map[string]bson.RawValue
}

// note records the _id of each document that has a hostname. Callers hold
// m.idsMu.
func (d *docIDs) note(docs ...bson.Raw) {
	for _, doc := range docs {
		h, ok := doc.Lookup("hostname").StringValueOK()
		if !ok || h == "" {
			continue
		}
		id, err := doc.LookupErr("_id")
		if err != nil || (id.Type != bson.TypeObjectID && id.Type != bson.TypeString) {
			delete(d.byHost, h)
			continue
		}
		if old, ok := d.byHost[h]; ok && old.Type == id.Type && string(old.Value) == string(id.Value) {
			continue
		}
		if d.byHost == nil {
			d.byHost = map[string]bson.RawValue{}
		}
		// The document's bytes belong to a cursor batch: keep a copy.
		d.byHost[h] = bson.RawValue{Type: id.Type, Value: append([]byte(nil), id.Value...)}
	}
}

func (m *Mongo) noteIDs(docs ...bson.Raw) {
	m.idsMu.Lock()
	m.ids.note(docs...)
	m.idsMu.Unlock()
}

func (m *Mongo) idOf(hostname string) (bson.RawValue, bool) {
	m.idsMu.Lock()
	defer m.idsMu.Unlock()
	id, ok := m.ids.byHost[hostname]
	return id, ok
}

func (m *Mongo) forgetID(hostname string) {
	m.idsMu.Lock()
	delete(m.ids.byHost, hostname)
	m.idsMu.Unlock()
}
