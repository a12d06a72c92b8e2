package embedded

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// FerretDB v1 on SQLite pushes a filter down to SQL only when it is
// exactly {_id: <string|ObjectId>}; any other filter decodes and tests
// every document of the collection in Go. The ledger's compare-and-set is
// a findAndModify whose filter is {_id: X, hostname: H, instance_id: I,
// rev: N}: on MongoDB the _id index finds the document and the rest is
// checked on it, atomically. Here that filter would be a scan of every
// name, so the serializer, which already holds writeMu for the whole
// command, serves it as two exact-_id commands instead:
//
//  1. find {_id: X} (limit 1): one document, pushed down;
//  2. the rest of the filter is checked on that document here;
//  3. no match: the reply of a findAndModify that matched nothing;
//     a match: the command forwarded with its filter cut to {_id: X}.
//
// No other write runs between 1 and 3 (writeMu), 1.x writers included, as
// every client reaches FerretDB only through the serializer: the check and
// the write are as atomic as one findAndModify on MongoDB. Whatever the
// matcher cannot decide exactly (operators other than $or and $exists,
// dotted paths, arrays or documents on either side, upserts, sorts) is
// forwarded untouched: a scan, but FerretDB's own answer.

// byIDPlan is a findAndModify the serializer can split.
type byIDPlan struct {
	db, coll string
	id       bson.RawValue
	rest     bson.Raw // the filter without _id
	remove   bool
	body     bson.Raw
}

// planByID returns the plan for req, or ok false to forward it as is.
func planByID(req []byte) (p byIDPlan, ok bool) {
	body, ok := soleBody(req)
	if !ok {
		return p, false
	}
	elems, err := body.Elements()
	if err != nil || len(elems) == 0 || elems[0].Key() != "findAndModify" {
		return p, false
	}
	p.body = body
	p.coll, ok = elems[0].Value().StringValueOK()
	if !ok {
		return p, false
	}
	var query bson.Raw
	for _, e := range elems[1:] {
		v := e.Value()
		switch e.Key() {
		case "query":
			query, ok = v.DocumentOK()
			if !ok {
				return p, false
			}
		case "$db":
			p.db, _ = v.StringValueOK()
		case "upsert":
			if v.Type != bson.TypeBoolean || v.Boolean() {
				return p, false // an upsert writes when nothing matches
			}
		case "remove":
			p.remove = v.Type == bson.TypeBoolean && v.Boolean()
		}
	}
	if query == nil || p.db == "" {
		return p, false
	}
	qe, err := query.Elements()
	if err != nil || len(qe) < 2 {
		return p, false // exactly {_id} is pushed down already
	}
	rest := bson.D{}
	for _, e := range qe {
		if e.Key() == "_id" {
			v := e.Value()
			if v.Type != bson.TypeString && v.Type != bson.TypeObjectID {
				return p, false
			}
			p.id = v
			continue
		}
		rest = append(rest, bson.E{Key: e.Key(), Value: e.Value()})
	}
	if p.id.Type == 0 {
		return p, false
	}
	if p.rest, err = bson.Marshal(rest); err != nil {
		return p, false
	}
	return p, true
}

// soleBody returns the body of an OP_MSG that has only a body section and
// no checksum.
func soleBody(msg []byte) (bson.Raw, bool) {
	if opCode(msg) != opMsg || len(msg) < 26 || binary.LittleEndian.Uint32(msg[16:20]) != 0 || msg[20] != 0 {
		return nil, false
	}
	size := int(int32(binary.LittleEndian.Uint32(msg[21:25])))
	if size < 5 || 21+size != len(msg) {
		return nil, false
	}
	body := bson.Raw(msg[21:])
	if body.Validate() != nil {
		return nil, false
	}
	return body, true
}

// errUnsure: the matcher cannot decide exactly as MongoDB would.
var errUnsure = errors.New("filter not decidable here")

// matches reports whether doc satisfies filter, for the subset of filters
// whose meaning is plain: top-level equality on scalars (null matching a
// missing field), {$exists: bool}, and $or of such.
func matches(doc, filter bson.Raw) (bool, error) {
	elems, err := filter.Elements()
	if err != nil {
		return false, errUnsure
	}
	for _, e := range elems {
		ok, err := matchElem(doc, e.Key(), e.Value())
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func matchElem(doc bson.Raw, key string, cond bson.RawValue) (bool, error) {
	if key == "$or" {
		arr, ok := cond.ArrayOK()
		if !ok {
			return false, errUnsure
		}
		vals, err := arr.Values()
		if err != nil || len(vals) == 0 {
			return false, errUnsure
		}
		any := false
		for _, v := range vals {
			sub, ok := v.DocumentOK()
			if !ok {
				return false, errUnsure
			}
			m, err := matches(doc, sub)
			if err != nil {
				return false, err // decide every branch, or none
			}
			any = any || m
		}
		return any, nil
	}
	if key == "" || strings.HasPrefix(key, "$") || strings.Contains(key, ".") {
		return false, errUnsure
	}
	field, ferr := doc.LookupErr(key)
	present := ferr == nil
	if present && (field.Type == bson.TypeArray || field.Type == bson.TypeEmbeddedDocument) {
		return false, errUnsure // array and document equality have their own rules
	}
	if d, ok := cond.DocumentOK(); ok {
		ce, err := d.Elements()
		if err != nil || len(ce) != 1 || ce[0].Key() != "$exists" || ce[0].Value().Type != bson.TypeBoolean {
			return false, errUnsure
		}
		return present == ce[0].Value().Boolean(), nil
	}
	switch cond.Type {
	case bson.TypeNull:
		return !present || field.Type == bson.TypeNull, nil
	case bson.TypeString, bson.TypeObjectID, bson.TypeBoolean, bson.TypeDateTime,
		bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
	default:
		return false, errUnsure
	}
	if !present {
		return false, nil
	}
	if a, aok := number(cond); aok {
		b, bok := number(field)
		return bok && a == b, nil
	}
	return field.Type == cond.Type && string(field.Value) == string(cond.Value), nil
}

// number gives a numeric BSON value as a float64 when that is exact.
func number(v bson.RawValue) (float64, bool) {
	switch v.Type {
	case bson.TypeInt32:
		return float64(v.Int32()), true
	case bson.TypeInt64:
		n := v.Int64()
		if n > 1<<53 || n < -(1<<53) {
			return math.NaN(), true // never equal: too big to compare here exactly
		}
		return float64(n), true
	case bson.TypeDouble:
		return v.Double(), true
	}
	return 0, false
}

// byID runs plan p on the upstream connection; the caller holds writeMu.
// It returns the client's reply, or nil to forward req unchanged.
func (s *serializer) byID(up net.Conn, ur *bufio.Reader, req []byte, p byIDPlan) ([]byte, error) {
	find, err := bson.Marshal(bson.D{
		{Key: "find", Value: p.coll},
		{Key: "filter", Value: bson.D{{Key: "_id", Value: p.id}}},
		{Key: "limit", Value: int64(1)},
		{Key: "singleBatch", Value: true},
		{Key: "$db", Value: p.db},
	})
	if err != nil {
		return nil, nil
	}
	s.observe(Query{Command: "find", Collection: p.coll, ExactID: true})
	reply, err := s.exchange(up, ur, opMsgFrom(0, 0, find))
	if err != nil {
		return nil, err
	}
	body, ok := soleBody(reply)
	if !ok {
		return nil, nil
	}
	if okv, _ := number(body.Lookup("ok")); okv != 1 {
		return nil, nil
	}
	batch, ok := body.Lookup("cursor", "firstBatch").ArrayOK()
	if !ok {
		return nil, nil
	}
	matched := false
	vals, err := batch.Values()
	if err != nil {
		return nil, nil
	}
	if len(vals) > 0 {
		doc, isDoc := vals[0].DocumentOK()
		if !isDoc {
			return nil, nil
		}
		if matched, err = matches(doc, p.rest); err != nil {
			return nil, nil
		}
	}
	reqID := binary.LittleEndian.Uint32(req[4:8])
	if !matched {
		lastErr := bson.D{{Key: "n", Value: int32(0)}}
		if !p.remove {
			lastErr = append(lastErr, bson.E{Key: "updatedExisting", Value: false})
		}
		none, err := bson.Marshal(bson.D{{Key: "lastErrorObject", Value: lastErr}, {Key: "value", Value: nil}, {Key: "ok", Value: float64(1)}})
		if err != nil {
			return nil, nil
		}
		return opMsgFrom(0, reqID, none), nil
	}
	cut, err := replaceQuery(p.body, bson.D{{Key: "_id", Value: p.id}})
	if err != nil {
		return nil, nil
	}
	s.observe(Query{Command: "findAndModify", Collection: p.coll, ExactID: true})
	return s.exchange(up, ur, opMsgFrom(reqID, 0, cut))
}

// exchange sends one request upstream and reads its reply.
func (s *serializer) exchange(up net.Conn, ur *bufio.Reader, msg []byte) ([]byte, error) {
	if _, err := up.Write(msg); err != nil {
		return nil, err
	}
	return readMessage(ur)
}

// opMsgFrom frames body as an OP_MSG with one body section.
func opMsgFrom(requestID, responseTo uint32, body []byte) []byte {
	msg := make([]byte, 21, 21+len(body))
	binary.LittleEndian.PutUint32(msg[4:], requestID)
	binary.LittleEndian.PutUint32(msg[8:], responseTo)
	binary.LittleEndian.PutUint32(msg[12:], opMsg)
	msg = append(msg, body...)
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)))
	return msg
}

// replaceQuery returns body with its query field set to q.
func replaceQuery(body bson.Raw, q bson.D) (bson.Raw, error) {
	elems, err := body.Elements()
	if err != nil {
		return nil, err
	}
	out := make(bson.D, 0, len(elems))
	for _, e := range elems {
		if e.Key() == "query" {
			out = append(out, bson.E{Key: "query", Value: q})
			continue
		}
		out = append(out, bson.E{Key: e.Key(), Value: e.Value()})
	}
	raw, err := bson.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("re-encoding findAndModify: %w", err)
	}
	return raw, nil
}
