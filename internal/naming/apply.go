package naming

import (
	"fmt"
	"slices"
	"time"
)

// Apply plays changes against a copy of records the way the ledger writes
// them: each change is a compare-and-set on one record (ExpectExists,
// ExpectInstanceID, ExpectRev must match), each record is written at most
// once per plan, and every write takes the next rev. It is the in-memory
// model of ledger.Store.Apply, for previews (`register --dry-run`) and for
// checking plans; records is not modified.
//
// Errors: a broken expectation, a record changed twice, an insert that is
// not a Bind or an unknown change type; the returned records are then nil.
func Apply(records []Record, changes []Change, now time.Time) ([]Record, error) {
	out := slices.Clone(records)
	var rev int64
	for _, r := range out {
		rev = max(rev, r.Rev)
	}
	touched := make(map[string]bool, len(changes))
	for _, c := range changes {
		if touched[c.Hostname] {
			return nil, fmt.Errorf("record %s changed twice in one plan", c.Hostname)
		}
		touched[c.Hostname] = true
		idx := slices.IndexFunc(out, func(r Record) bool { return r.Hostname == c.Hostname && r.Service == c.Service })
		if (idx >= 0) != c.ExpectExists {
			return nil, fmt.Errorf("%s: ExpectExists=%v but record exists=%v", Describe(c), c.ExpectExists, idx >= 0)
		}
		if idx >= 0 && (out[idx].InstanceID != c.ExpectInstanceID || out[idx].Rev != c.ExpectRev) {
			return nil, fmt.Errorf("%s: expected (%q, rev %d), record has (%q, rev %d)", Describe(c),
				c.ExpectInstanceID, c.ExpectRev, out[idx].InstanceID, out[idx].Rev)
		}
		if idx < 0 {
			if c.Type != Bind {
				return nil, fmt.Errorf("%s: insert by a %s", Describe(c), c.Type)
			}
			out = append(out, Record{Hostname: c.Hostname, Service: c.Service, Scheme: c.Scheme})
			idx = len(out) - 1
		}
		rev++
		r := &out[idx]
		r.Rev, r.UpdatedAt, r.Role, r.Ordinal = rev, now, c.Role, c.Ordinal
		switch c.Type {
		case Bind:
			if r.InstanceID != c.InstanceID {
				r.ClaimedAt = now
			}
			r.InstanceID, r.IP, r.Aliases = c.InstanceID, c.IP, slices.Clone(c.Aliases)
			r.ReleasedAt, r.LastInstanceID = time.Time{}, ""
		case Release:
			if r.InstanceID != "" {
				r.ReleasedAt, r.LastInstanceID = c.ReleasedAt, r.InstanceID
				if r.ReleasedAt.IsZero() {
					r.ReleasedAt = now
				}
			}
			r.InstanceID, r.IP, r.Aliases, r.ClaimedAt = "", "", nil, time.Time{}
		case SetIP:
			r.IP = c.IP
		case SetAliases:
			r.Aliases = slices.Clone(c.Aliases)
		default:
			return nil, fmt.Errorf("%s: unknown change type %q", c.Hostname, c.Type)
		}
	}
	return out, nil
}
