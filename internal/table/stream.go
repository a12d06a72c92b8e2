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
// document per event; for Name one hostname per line.
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
	switch s.f {
	case JSON:
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
	case YAML:
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
	case Name:
		for _, e := range events {
			if _, err := fmt.Fprintln(s.w, e.Name.Hostname); err != nil {
				return err
			}
		}
		return nil
	}
	now := s.now()
	rows := make([][]string, 0, len(events)+1)
	first := s.widths == nil
	if first {
		rows = append(rows, NameHeader(s.f))
	}
	for _, e := range events {
		rows = append(rows, NameRow(e.Name, s.f, now))
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
	_, err := io.WriteString(s.w, b.String())
	return err
}
