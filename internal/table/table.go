// Package table prints names and services the way kubectl prints objects:
// aligned columns with capitalised headers and short ages, or JSON, YAML or
// bare names for scripts, and key/value pages for describe.
package table

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

	"github.com/aerostat-io/aerostat/client"
)

// none is what kubectl prints for an empty cell.
const none = "<none>"

// Age renders the time since t as kubectl's AGE column does ("45s",
// "3m20s", "2h", "5d"); "<unknown>" for a zero time.
func Age(t, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t))
}

// Columns of the names table; Wide adds the rest.
var (
	nameHeader     = []string{"NAME", "SERVICE", "STATE", "INSTANCE", "IP", "AGE"}
	nameWideHeader = []string{"NAME", "SERVICE", "TYPE", "ROLE", "STATE", "INSTANCE", "IP", "ALIASES", "REV", "AGE"}
)

// NameRow returns the cells of one name.
func NameRow(n client.Name, f Format, now time.Time) []string {
	if n.State == client.Pending {
		n.Hostname = "<pending>" // no name yet: never mistaken for one
	}
	if f.kind == KindWide {
		return []string{n.Hostname, n.Service, orNone(n.ServiceType), orNone(n.Role), string(n.State),
			orNone(n.InstanceID), orNone(n.IP), orNone(strings.Join(n.Aliases, ",")),
			strconv.FormatInt(n.Rev, 10), Age(n.Since(), now)}
	}
	return []string{n.Hostname, n.Service, string(n.State), orNone(n.InstanceID), orNone(n.IP), Age(n.Since(), now)}
}

// NameHeader returns the header of the names table.
func NameHeader(f Format) []string {
	if f.kind == KindWide {
		return nameWideHeader
	}
	return nameHeader
}

// Names prints names in format f. JSON and YAML print a list (an object
// when single is set, as for `get names web-3`); jsonpath sees that object
// or kubectl's List ({.items[*].hostname}); -o name prints name/HOSTNAME.
func Names(w io.Writer, names []client.Name, f Format, single bool, now time.Time) error {
	switch f.kind {
	case KindJSON, KindYAML:
		if single && len(names) == 1 {
			return encode(w, f, names[0])
		}
		if names == nil {
			names = []client.Name{}
		}
		return encode(w, f, names)
	case KindJSONPath:
		if single && len(names) == 1 {
			return printPath(w, f, names[0])
		}
		return printPath(w, f, listOf(names))
	case KindCustomColumns:
		return printColumns(w, f, names)
	case KindName:
		for _, n := range names {
			if n.State == client.Pending {
				continue // no name to print
			}
			if _, err := fmt.Fprintln(w, NameRef(n)); err != nil {
				return err
			}
		}
		return nil
	}
	if len(names) == 0 {
		return nil
	}
	rows := make([][]string, 0, len(names))
	for _, n := range names {
		rows = append(rows, NameRow(n, f, now))
	}
	return Write(w, f.header(NameHeader(f)), rows)
}

// NameRef is what -o name prints for a name: name/web-0, as kubectl's
// resource/name.
func NameRef(n client.Name) string { return "name/" + n.Hostname }

// Services prints service summaries in format f. The READY column appears
// when any service has a Ready condition (read from the cluster).
func Services(w io.Writer, svcs []client.Service, f Format, now time.Time) error {
	switch f.kind {
	case KindJSON, KindYAML:
		if svcs == nil {
			svcs = []client.Service{}
		}
		return encode(w, f, svcs)
	case KindJSONPath:
		return printPath(w, f, listOf(svcs))
	case KindCustomColumns:
		return printColumns(w, f, svcs)
	case KindName:
		for _, s := range svcs {
			if _, err := fmt.Fprintln(w, "service/"+s.Service); err != nil {
				return err
			}
		}
		return nil
	}
	if len(svcs) == 0 {
		return nil
	}
	ready := slices.ContainsFunc(svcs, func(s client.Service) bool { return s.Ready != "" })
	header := []string{"SERVICE", "TYPE", "BOUND", "GAPS", "MASTER"}
	if ready {
		header = append(header, "READY")
	}
	policy := slices.ContainsFunc(svcs, func(s client.Service) bool { return s.PolicySource != "" })
	if policy {
		header = append(header, "HOLD-BACK", "POLICY")
	}
	header = append(header, "AGE")
	rows := make([][]string, 0, len(svcs))
	for _, s := range svcs {
		row := []string{s.Service, orNone(s.ServiceType), strconv.Itoa(s.Bound), strconv.Itoa(s.Gaps), orNone(s.Master)}
		if ready {
			row = append(row, orNone(s.Ready))
		}
		if policy {
			hb := ""
			if s.HoldBack != nil {
				hb = s.HoldBack.String()
			}
			row = append(row, orNone(hb), orNone(s.PolicySource))
		}
		var since time.Time
		if s.Since != nil {
			since = *s.Since
		}
		rows = append(rows, append(row, Age(since, now)))
	}
	return Write(w, f.header(header), rows)
}

// Write prints an aligned table: columns separated by at least three
// spaces, as kubectl does.
func Write(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	if header != nil {
		fmt.Fprintln(tw, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func encode(w io.Writer, f Format, v any) error {
	if f.kind == KindYAML {
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding yaml: %w", err)
		}
		_, err = w.Write(b)
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}
