package ledger

import (
	"fmt"
	"math"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// decodeRecord turns one stored document into a Record, tolerating 1.x
// data. ok is false when the document has no usable hostname; problems
// name the document and what was wrong.
func decodeRecord(doc bson.Raw) (rec naming.Record, problems []string, ok bool) {
	id := docID(doc)
	bad := func(field string, v bson.RawValue) {
		problems = append(problems, fmt.Sprintf("document %s: field %s has type %s, ignored", id, field, v.Type))
	}
	str := func(field string) string {
		v, err := doc.LookupErr(field)
		if err != nil || v.Type == bson.TypeNull {
			return ""
		}
		s, isStr := v.StringValueOK()
		if !isStr {
			bad(field, v)
		}
		return s
	}

	rec.Hostname = str("hostname")
	if rec.Hostname == "" {
		return rec, append(problems, fmt.Sprintf("document %s: no hostname, skipped", id)), false
	}
	rec.Service = str("service")
	rec.InstanceID = str("instance_id")
	rec.IP = str("ip")
	rec.Scheme = naming.Iterative // the 1.x default
	if st := str("service_type"); st != "" {
		s, err := naming.ParseScheme(st)
		if err != nil {
			problems = append(problems, fmt.Sprintf("document %s: service_type %q unknown, read as iterative", id, st))
		} else {
			rec.Scheme = s
		}
	}
	rec.Aliases = aliases(doc, bad)

	// 1.x documents have no role or ordinal: derive them from the name
	// (zero values when it is not one Aerostat forms).
	rec.Role, rec.Ordinal, _ = naming.ParseHostname(rec.Service, rec.Scheme, rec.Hostname)
	if v, err := doc.LookupErr("role"); err == nil && v.Type != bson.TypeNull {
		if s, isStr := v.StringValueOK(); isStr {
			rec.Role = naming.Role(s)
		} else {
			bad("role", v)
		}
	}
	if v, err := doc.LookupErr("ordinal"); err == nil && v.Type != bson.TypeNull {
		if n, isInt := intValue(v); isInt {
			rec.Ordinal = int(n)
		} else {
			bad("ordinal", v)
		}
	}
	// 1.x clients rename by setting hostname alone (--change-master): the
	// hostname is then the truth and the stored role and ordinal are stale.
	if role, ord, parsed := naming.ParseHostname(rec.Service, rec.Scheme, rec.Hostname); parsed && (role != rec.Role || ord != rec.Ordinal) {
		problems = append(problems, fmt.Sprintf("document %s: role %q ordinal %d disagree with hostname %s (renamed by a 1.x client); read as the hostname says", id, rec.Role, rec.Ordinal, rec.Hostname))
		rec.Role, rec.Ordinal = role, ord
	}
	if v, err := doc.LookupErr("rev"); err == nil && v.Type != bson.TypeNull {
		if n, isInt := intValue(v); isInt {
			rec.Rev = n
		} else {
			bad("rev", v)
		}
	}
	rec.UpdatedAt = timeValue(doc, "updated_at", bad)
	rec.ClaimedAt = timeValue(doc, "claimed_at", bad)
	rec.ReleasedAt = timeValue(doc, "released_at", bad)
	rec.LastInstanceID = str("last_instance_id")
	return rec, problems, true
}

func docID(doc bson.Raw) string {
	v, err := doc.LookupErr("_id")
	if err != nil {
		return "(no _id)"
	}
	if oid, ok := v.ObjectIDOK(); ok {
		return oid.Hex()
	}
	return v.String()
}

// aliases reads a 1.x alias list: normally an array of strings; a single
// string (hand-edited data) is split on spaces and commas.
func aliases(doc bson.Raw, bad func(string, bson.RawValue)) []string {
	v, err := doc.LookupErr("aliases")
	if err != nil || v.Type == bson.TypeNull {
		return nil
	}
	if s, ok := v.StringValueOK(); ok {
		return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
	}
	arr, ok := v.ArrayOK()
	if !ok {
		bad("aliases", v)
		return nil
	}
	vals, err := arr.Values()
	if err != nil {
		bad("aliases", v)
		return nil
	}
	var out []string
	for _, e := range vals {
		if s, ok := e.StringValueOK(); ok && s != "" {
			out = append(out, s)
		} else {
			bad("aliases[]", e)
		}
	}
	return out
}

func intValue(v bson.RawValue) (int64, bool) {
	switch v.Type {
	case bson.TypeInt32:
		return int64(v.Int32()), true
	case bson.TypeInt64:
		return v.Int64(), true
	case bson.TypeDouble:
		f := v.Double()
		if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

func timeValue(doc bson.Raw, field string, bad func(string, bson.RawValue)) time.Time {
	v, err := doc.LookupErr(field)
	if err != nil || v.Type == bson.TypeNull {
		return time.Time{}
	}
	dt, ok := v.DateTimeOK()
	if !ok {
		bad(field, v)
		return time.Time{}
	}
	return time.UnixMilli(dt).UTC()
}
