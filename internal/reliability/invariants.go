package reliability

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// Doc is one stored document of aerostat.servers as it is, before the
// ledger's lenient decoding merges or skips anything.
type Doc struct {
	ID         string
	Hostname   string
	Service    string
	InstanceID string
	IP         string
}

// ReadDocs reads every document of the servers collection of db.
func ReadDocs(ctx context.Context, db *mongo.Database) ([]Doc, error) {
	cur, err := db.Collection("servers").Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("reading raw documents: %w", err)
	}
	var raws []bson.Raw
	if err := cur.All(ctx, &raws); err != nil {
		return nil, fmt.Errorf("reading raw documents: %w", err)
	}
	docs := make([]Doc, 0, len(raws))
	for _, r := range raws {
		str := func(k string) string { s, _ := r.Lookup(k).StringValueOK(); return s }
		docs = append(docs, Doc{ID: r.Lookup("_id").String(), Hostname: str("hostname"), Service: str("service"),
			InstanceID: str("instance_id"), IP: str("ip")})
	}
	return docs, nil
}

// CheckUnique returns a violation for every hostname held by more than one
// document: the unique index and the compare-and-set writes must make that
// impossible for Aerostat's own writers.
func CheckUnique(docs []Doc) []string {
	n := map[string]int{}
	for _, d := range docs {
		if d.Hostname != "" { // no usable hostname: not a name (the ledger skips it)
			n[d.Hostname]++
		}
	}
	var out []string
	for h, c := range n {
		if c > 1 {
			out = append(out, fmt.Sprintf("hostname %s is held by %d documents", h, c))
		}
	}
	sort.Strings(out)
	return out
}

// CheckSettled checks the ledger after a pass that completed: every live
// instance (id → service) holds exactly one name of its service, no name
// is held by a dead (shutting-down or terminated) instance, and no name is
// held twice. Stopped and vanished instances may keep their names for
// their grace periods.
func CheckSettled(recs []naming.Record, live map[string]string, dead map[string]bool) []string {
	var out []string
	held := map[string][]string{}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.Hostname] {
			out = append(out, fmt.Sprintf("hostname %s appears twice", r.Hostname))
		}
		seen[r.Hostname] = true
		if r.Free() {
			continue
		}
		held[r.InstanceID] = append(held[r.InstanceID], r.Hostname)
		if dead[r.InstanceID] {
			out = append(out, fmt.Sprintf("%s is held by %s, which is dead", r.Hostname, r.InstanceID))
		}
	}
	for id, svc := range live {
		names := held[id]
		switch {
		case len(names) == 0:
			out = append(out, fmt.Sprintf("live instance %s (service %s) has no name", id, svc))
		case len(names) > 1:
			slices.Sort(names)
			out = append(out, fmt.Sprintf("instance %s holds %d names: %s", id, len(names), strings.Join(names, ", ")))
		}
	}
	sort.Strings(out)
	return out
}

// CheckHostsFile checks a hosts file an agent wrote: it still starts with
// the user's lines (head), its managed block parses, no hostname appears
// twice in it, and every entry is an address the ledger gave that name at
// some point (ever maps hostname → addresses; nil skips that check).
func CheckHostsFile(path, head string, ever func(hostname, ip string) bool) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", path, err)}
	}
	if !strings.HasPrefix(string(b), head) {
		return []string{fmt.Sprintf("%s: the user's lines before the block were lost", path)}
	}
	f, err := hostsfile.Parse(b)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", path, err)}
	}
	var out []string
	seen := map[string]bool{}
	for _, e := range f.Entries {
		if seen[e.Hostname] {
			out = append(out, fmt.Sprintf("%s: %s listed twice", path, e.Hostname))
		}
		seen[e.Hostname] = true
		if ever != nil && !ever(e.Hostname, e.IP) {
			out = append(out, fmt.Sprintf("%s: %s %s was never in the ledger", path, e.IP, e.Hostname))
		}
	}
	return out
}

// BlockOf returns the managed block's entries of a hosts file as
// "ip hostname" lines, sorted, or an error.
func BlockOf(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := hostsfile.Parse(b)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(f.Entries))
	for _, e := range f.Entries {
		out = append(out, e.IP+" "+e.Hostname)
	}
	sort.Strings(out)
	return out, nil
}

// Want returns the "ip hostname" lines an agent should hold for recs
// (bound names and their aliases), sorted.
func Want(recs []naming.Record) []string {
	entries, _ := hostsfile.FromRecords(recs)
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.IP+" "+e.Hostname)
	}
	sort.Strings(out)
	return out
}
