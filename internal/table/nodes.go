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
// print the whole report; -o name prints the laggards only, one a line,
// for scripts that want to act on them.
func Nodes(w io.Writer, c feed.Convergence, f Format, now time.Time) error {
	switch f {
	case JSON, YAML:
		return encode(w, f, c)
	case Name:
		for _, n := range c.Laggards() {
			if _, err := fmt.Fprintln(w, n.Name); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := fmt.Fprintln(w, c.Summary()); err != nil {
		return err
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
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	return Write(w, []string{"NODE", "REV", "BEHIND", "STALE", "LAST SEEN"}, rows)
}
