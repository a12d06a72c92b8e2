package table

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/aerostat-io/aerostat/client"
)

// Stream prints watch events as they come: for tables, the header and the
// first batch, then one row per change, aligned with what came before (as
// `kubectl get -w`); for JSON one event object per line; for YAML one
// document per event; for Name one name/HOSTNAME per line; jsonpath and
// custom-columns evaluate each name.
type Stream struct {
	w      io.Writer
	f      Format
	now    func() time.Time
	widths []int
}

// NewStream returns a Stream printing to w; now gives the time for ages.
func NewStream(w io.Writer, f Format, now func() time.Time) *Stream {
	return &Stream{w: w, f: f, now: now}
}

// Print prints one batch of events.
func (s *Stream) Print(events []client.Event) error {
	switch s.f.kind {
	case KindJSON:
		for _, e := range events {
			b, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("encoding json: %w", err)
			}
			if _, err := fmt.Fprintf(s.w, "%s\n", b); err != nil {
				return err
			}
		}
		return nil
	case KindYAML:
		for _, e := range events {
			b, err := yaml.Marshal(e)
			if err != nil {
				return fmt.Errorf("encoding yaml: %w", err)
			}
			if _, err := fmt.Fprintf(s.w, "---\n%s", b); err != nil {
				return err
			}
		}
		return nil
	case KindName:
		for _, e := range events {
			if _, err := fmt.Fprintln(s.w, NameRef(e.Name)); err != nil {
				return err
			}
		}
		return nil
	case KindJSONPath:
		for _, e := range events {
			if err := printPath(s.w, s.f, e.Name); err != nil {
				return err
			}
			if _, err := fmt.Fprintln(s.w); err != nil {
				return err
			}
		}
		return nil
	}
	return s.printRows(events)
}

// printRows prints table, wide and custom-columns rows, the header first
// (unless --no-headers), each column as wide as the widest cell so far.
func (s *Stream) printRows(events []client.Event) error {
	names := make([]client.Name, 0, len(events))
	for _, e := range events {
		names = append(names, e.Name)
	}
	var rows [][]string
	header := NameHeader(s.f)
	if s.f.kind == KindCustomColumns {
		header = s.f.tmpl.headers
		var err error
		if rows, err = columnRows(s.f, names); err != nil {
			return err
		}
	} else {
		now := s.now()
		for _, n := range names {
			rows = append(rows, NameRow(n, s.f, now))
		}
	}
	if s.widths == nil && !s.f.noHeaders {
		rows = append([][]string{header}, rows...)
	}
	for _, r := range rows {
		for i, c := range r {
			if i >= len(s.widths) {
				s.widths = append(s.widths, 0)
			}
			s.widths[i] = max(s.widths[i], len(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", s.widths[i]-len(c)+3))
			}
		}
		b.WriteByte('\n')
	}
	if s.widths == nil {
		s.widths = []int{} // the header is printed once, even when no row came yet
	}
	_, err := io.WriteString(s.w, b.String())
	return err
}
