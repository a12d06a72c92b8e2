package table

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aerostat-io/aerostat/internal/feed"
)

// Nodes prints the convergence of the agents: a summary line ("2 of 3
// hosts at rev 17") and one row a node, laggards first. JSON and YAML
// print the whole report, as jsonpath sees it; custom-columns has a row a
// node; -o name prints the laggards only (node/NAME), one a line, for
// scripts that want to act on them. --no-headers leaves out the summary.
func Nodes(w io.Writer, c feed.Convergence, f Format, now time.Time) error {
	switch f.kind {
	case KindJSON, KindYAML:
		return encode(w, f, c)
	case KindJSONPath:
		return printPath(w, f, c)
	case KindCustomColumns:
		return printColumns(w, f, c.Nodes)
	case KindName:
		for _, n := range c.Laggards() {
			if _, err := fmt.Fprintln(w, "node/"+n.Name); err != nil {
				return err
			}
		}
		return nil
	}
	if !f.noHeaders {
		if _, err := fmt.Fprintln(w, c.Summary()); err != nil {
			return err
		}
	}
	if len(c.Nodes) == 0 {
		return nil
	}
	rows := make([][]string, 0, len(c.Nodes))
	for _, n := range c.Nodes {
		rev, behind, stale := strconv.FormatInt(n.Rev, 10), strconv.FormatInt(n.Behind, 10), "-"
		if n.Rev < 0 {
			rev = "<unknown>"
		}
		if n.StaleSince != nil {
			stale = Age(*n.StaleSince, now)
		}
		rows = append(rows, []string{n.Name, rev, behind, stale, Age(n.LastSeen, now)})
	}
	if f.noHeaders {
		return Write(w, nil, rows)
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	return Write(w, []string{"NODE", "REV", "BEHIND", "STALE", "LAST SEEN"}, rows)
}
