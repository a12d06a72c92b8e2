package embedded

import (
	"bytes"
	"encoding/binary"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Query describes one filtered command as FerretDB received it from the
// serializer, for Options.QueryLog.
type Query struct {
	// Command is the command name (find, findAndModify, update, delete,
	// count, aggregate).
	Command    string
	Collection string
	// ExactID: the filter is exactly {_id: <string|ObjectId>}, the one
	// filter FerretDB v1 on SQLite serves without decoding every
	// document of the collection. False is a scan.
	ExactID bool
}

// filterField is where each filtered command keeps its filter: in the
// body, or in each document of a sequence (update, delete).
var filterField = map[string]struct{ field, seq string }{
	"find":          {field: "filter"},
	"findAndModify": {field: "query"},
	"count":         {field: "query"},
	"update":        {field: "q", seq: "updates"},
	"delete":        {field: "q", seq: "deletes"},
}

func (s *serializer) observe(q Query) {
	if s.lim.queryLog != nil {
		s.lim.queryLog(q)
	}
}

// logQueries reports each filter of req to the query log.
func (s *serializer) logQueries(req []byte) {
	if s.lim.queryLog == nil || opCode(req) != opMsg || len(req) < 21 {
		return
	}
	body, seqs, ok := sections(req)
	if !ok {
		return
	}
	if body == nil || body.Validate() != nil {
		return
	}
	elems, err := body.Elements()
	if err != nil || len(elems) == 0 {
		return
	}
	name := elems[0].Key()
	where, known := filterField[name]
	if !known {
		return
	}
	coll, _ := elems[0].Value().StringValueOK()
	filters := []bson.RawValue{}
	if where.seq == "" {
		filters = append(filters, body.Lookup(where.field))
	} else {
		docs := seqs[where.seq]
		if arr, ok := body.Lookup(where.seq).ArrayOK(); ok {
			vals, _ := arr.Values()
			for _, v := range vals {
				if d, ok := v.DocumentOK(); ok {
					docs = append(docs, d)
				}
			}
		}
		for _, d := range docs {
			filters = append(filters, d.Lookup(where.field))
		}
	}
	for _, f := range filters {
		s.observe(Query{Command: name, Collection: coll, ExactID: exactID(f)})
	}
}

// exactID reports whether f is exactly {_id: <string|ObjectId>}.
func exactID(f bson.RawValue) bool {
	d, ok := f.DocumentOK()
	if !ok {
		return false
	}
	elems, err := d.Elements()
	if err != nil || len(elems) != 1 || elems[0].Key() != "_id" {
		return false
	}
	t := elems[0].Value().Type
	return t == bson.TypeString || t == bson.TypeObjectID
}

// sections splits an OP_MSG into its body and its document sequences.
func sections(req []byte) (body bson.Raw, seqs map[string][]bson.Raw, ok bool) {
	if opCode(req) != opMsg || len(req) < 21 || binary.LittleEndian.Uint32(req[16:20])&^flagMoreToCome != 0 {
		return nil, nil, false
	}
	seqs = map[string][]bson.Raw{}
	b := req[20:]
	for len(b) > 5 {
		kind := b[0]
		size := int(int32(binary.LittleEndian.Uint32(b[1:5])))
		if size < 5 || size+1 > len(b) {
			return nil, nil, false
		}
		switch kind {
		case 0:
			body = bson.Raw(b[1 : 1+size])
		case 1:
			sec := b[5 : 1+size]
			end := bytes.IndexByte(sec, 0)
			if end < 0 {
				return nil, nil, false
			}
			id, docs := string(sec[:end]), sec[end+1:]
			for len(docs) >= 5 {
				n := int(int32(binary.LittleEndian.Uint32(docs)))
				if n < 5 || n > len(docs) {
					return nil, nil, false
				}
				seqs[id] = append(seqs[id], bson.Raw(docs[:n]))
				docs = docs[n:]
			}
		default:
			return nil, nil, false
		}
		b = b[1+size:]
	}
	if body == nil || body.Validate() != nil {
		return nil, nil, false
	}
	return body, seqs, true
}

// target names the database and collection a command acts on.
func target(req []byte) (db, coll string, ok bool) {
	body, _, ok := sections(req)
	if !ok {
		return "", "", false
	}
	elems, err := body.Elements()
	if err != nil || len(elems) == 0 {
		return "", "", false
	}
	coll, ok = elems[0].Value().StringValueOK()
	if !ok {
		return "", "", false
	}
	db, ok = body.Lookup("$db").StringValueOK()
	return db, coll, ok
}
