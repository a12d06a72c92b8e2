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
	byHost map[string]storedID
}

// storedID is a document's _id, an ObjectID (2.x and 1.x inserts) or a
// string, held by value: a copy of the raw bytes would be one more
// allocation a name (at 50,000 names the table was 5.8 MB of a
// controller's live heap at its peak).
type storedID struct {
	oid   bson.ObjectID
	isStr bool
	str   string
}

// value is the _id as a filter takes it.
func (d storedID) value() any {
	if d.isStr {
		return d.str
	}
	return d.oid
}

// idOfDoc reads a document's _id; ok is false for any other type.
func idOfDoc(doc bson.Raw) (id storedID, ok bool) {
	v, err := doc.LookupErr("_id")
	if err != nil {
		return storedID{}, false
	}
	if oid, isOID := v.ObjectIDOK(); isOID {
		return storedID{oid: oid}, true
	}
	if s, isStr := v.StringValueOK(); isStr {
		return storedID{isStr: true, str: s}, true
	}
	return storedID{}, false
}

// note records the _id of doc under hostname (read from doc when ""),
// for a document that has one. Callers hold m.idsMu.
func (d *docIDs) note(hostname string, doc bson.Raw) {
	if hostname == "" {
		h, ok := doc.Lookup("hostname").StringValueOK()
		if !ok || h == "" {
			return
		}
		hostname = h
	}
	id, ok := idOfDoc(doc)
	if !ok {
		delete(d.byHost, hostname)
		return
	}
	if old, seen := d.byHost[hostname]; seen && old == id {
		return
	}
	if d.byHost == nil {
		d.byHost = map[string]storedID{}
	}
	d.byHost[hostname] = id
}

func (m *Mongo) noteIDs(docs ...bson.Raw) {
	m.idsMu.Lock()
	for _, doc := range docs {
		m.ids.note("", doc)
	}
	m.idsMu.Unlock()
}

// noteID is noteIDs for one document whose hostname the caller decoded
// already (a full read): the table's key is then that string, not a
// second copy of it.
func (m *Mongo) noteID(hostname string, doc bson.Raw) {
	m.idsMu.Lock()
	m.ids.note(hostname, doc)
	m.idsMu.Unlock()
}

func (m *Mongo) idOf(hostname string) (any, bool) {
	m.idsMu.Lock()
	defer m.idsMu.Unlock()
	id, ok := m.ids.byHost[hostname]
	return id.value(), ok
}

func (m *Mongo) forgetID(hostname string) {
	m.idsMu.Lock()
	delete(m.ids.byHost, hostname)
	m.idsMu.Unlock()
}
