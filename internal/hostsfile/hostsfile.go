// Package hostsfile parses and renders /etc/hosts with Aerostat's managed
// block and writes it safely.
//
// The file Aerostat writes looks like this; every byte outside the two
// marked sections belongs to the user and is kept as it was:
//
//	127.0.0.1 localhost            (user lines, kept byte for byte)
//	# AEROSTAT LEGACY
//	…output of --legacy-updater (/etc/hosts.legacy)…
//	# /AEROSTAT LEGACY
//	# AEROSTAT
//	10.0.0.5 web-0
//	10.0.0.5 www
//	# /AEROSTAT
//	…more user lines…
//
// The legacy section has its own markers so that a later run can replace it
// instead of taking it for user lines. It always sits right before the block,
// so resolvers that take the first match still see legacy names first, as in 1.x.
//
// Repair of hand-edited files: duplicated complete sections are merged into
// one at the position of the first (their content is Aerostat's own, so no
// user line is lost). A begin marker without its end marker, or an end marker
// without a begin, is an error (*BlockError): Aerostat cannot tell where the
// user's lines start again, so it writes nothing until a person fixes it.
package hostsfile

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// Markers of the managed sections, as written by 1.x.
const (
	BeginMarker       = "# AEROSTAT"
	EndMarker         = "# /AEROSTAT"
	LegacyBeginMarker = "# AEROSTAT LEGACY"
	LegacyEndMarker   = "# /AEROSTAT LEGACY"
)

// Entry is one `ip hostname` line of the block.
type Entry struct {
	IP       string
	Hostname string
}

// File is a parsed hosts file.
type File struct {
	// Before and After are the user's bytes before and after the managed
	// sections. With no managed section, Before is the whole file.
	Before, After []byte
	// Legacy is the content of the legacy section (nil if none).
	Legacy []byte
	// Entries of the block, in file order; lines that are not a valid
	// `ip name…` line are ignored (the block is Aerostat's own).
	Entries []Entry
	// HasBlock reports whether a managed block was found.
	HasBlock bool
}

// BlockError reports a broken managed section; nothing should be written.
type BlockError struct {
	Line   int // 1-based line of the offending marker
	Marker string
	Reason string
}

func (e *BlockError) Error() string {
	return fmt.Sprintf("hosts file line %d: %q %s; fix the file by hand (Aerostat will not guess where your lines resume)", e.Line, e.Marker, e.Reason)
}

// ErrBrokenBlock is wrapped by every *BlockError.
var ErrBrokenBlock = errors.New("broken aerostat block")

func (e *BlockError) Unwrap() error { return ErrBrokenBlock }

// marker returns the marker a line holds, or "".
func marker(line []byte) string {
	s := strings.TrimRight(string(line), " \t\r\n")
	switch s {
	case BeginMarker, EndMarker, LegacyBeginMarker, LegacyEndMarker:
		return s
	}
	return ""
}

// Parse splits a hosts file into the user's bytes and the managed sections.
// It returns a *BlockError for unbalanced markers.
func Parse(data []byte) (File, error) {
	var f File
	var user []byte // user bytes after the first managed section
	var block, legacy []byte
	seenSection := false
	open := "" // begin marker of the section we are in, or ""
	openLine := 0
	var legacyBuf []byte
	lineNo := 0
	for rest := data; len(rest) > 0; {
		lineNo++
		i := bytes.IndexByte(rest, '\n')
		var line []byte
		if i < 0 {
			line, rest = rest, nil
		} else {
			line, rest = rest[:i+1], rest[i+1:]
		}
		m := marker(line)
		switch {
		case open == "" && (m == BeginMarker || m == LegacyBeginMarker):
			open, openLine = m, lineNo
			seenSection = true
			if m == LegacyBeginMarker {
				legacyBuf = legacyBuf[:0]
			}
		case open == "" && m != "":
			return File{}, &BlockError{Line: lineNo, Marker: m, Reason: "has no matching begin marker"}
		case open == "":
			if seenSection {
				user = append(user, line...)
			} else {
				f.Before = append(f.Before, line...)
			}
		case m == "":
			if open == BeginMarker {
				block = append(block, line...)
			} else {
				legacyBuf = append(legacyBuf, line...)
			}
		case open == BeginMarker && m == EndMarker:
			open = ""
			f.HasBlock = true
		case open == LegacyBeginMarker && m == LegacyEndMarker:
			open = ""
			// Duplicated legacy sections are merged by keeping the first.
			if legacy == nil {
				legacy = append([]byte{}, legacyBuf...)
			}
		default:
			return File{}, &BlockError{Line: lineNo, Marker: m, Reason: fmt.Sprintf("inside the section opened at line %d", openLine)}
		}
	}
	if open != "" {
		return File{}, &BlockError{Line: openLine, Marker: open, Reason: "has no matching end marker"}
	}
	f.After = user
	f.Legacy = legacy
	f.Entries = parseEntries(block)
	return f, nil
}

func parseEntries(block []byte) []Entry {
	var out []Entry
	for _, line := range strings.Split(string(block), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) < 2 || checkIP(fields[0]) != nil {
			continue
		}
		for _, name := range fields[1:] {
			if checkName(name) == nil {
				out = append(out, Entry{IP: fields[0], Hostname: name})
			}
		}
	}
	return out
}

// checkIP accepts what a resolver accepts in /etc/hosts.
func checkIP(s string) error {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("ip %q: not an IP address", s)
	}
	// A zone may hold any byte, newlines included.
	if a.Zone() != "" {
		return fmt.Errorf("ip %q: zoned addresses are not supported", s)
	}
	return nil
}

// checkName keeps anything that could break the file (spaces, '#',
// newlines, control bytes) out of it, whatever the ledger holds.
func checkName(s string) error {
	if s == "" || len(s) > 253 || s[0] == '-' || s[0] == '.' {
		return fmt.Errorf("hostname %q: not a valid host name", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
		if !ok {
			return fmt.Errorf("hostname %q: not a valid host name", s)
		}
	}
	return nil
}

// FromRecords turns ledger records into block entries: one per bound record
// and one per alias, normalized (see Normalize). Records or aliases that
// cannot go into a hosts file are left out and described in skipped.
func FromRecords(records []naming.Record) (entries []Entry, skipped []string) {
	for _, r := range records {
		if r.Free() {
			continue
		}
		if err := checkIP(r.IP); err != nil {
			skipped = append(skipped, fmt.Sprintf("record %q: %v", r.Hostname, err))
			continue
		}
		for _, name := range append([]string{r.Hostname}, r.Aliases...) {
			if err := checkName(name); err != nil {
				skipped = append(skipped, fmt.Sprintf("record %q: %v", r.Hostname, err))
				continue
			}
			entries = append(entries, Entry{IP: r.IP, Hostname: name})
		}
	}
	return Normalize(entries), skipped
}

// Normalize sorts entries by hostname (then IP) and drops exact duplicates,
// so the same names always render to the same bytes.
//
// The order is bytewise, not naming.CompareHostnames: every deployed
// agent renders in this order, so changing it would rewrite every
// machine's hosts file once for no change of names (the golden test pins it).
func Normalize(entries []Entry) []Entry {
	out := append([]Entry(nil), entries...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Hostname != out[j].Hostname {
			return out[i].Hostname < out[j].Hostname
		}
		return out[i].IP < out[j].IP
	})
	n := 0
	for i, e := range out {
		if i > 0 && e == out[n-1] {
			continue
		}
		out[n] = e
		n++
	}
	return out[:n]
}

// Render returns the file with its managed sections replaced: the legacy
// content (if any) and then the block with the given entries, at the place
// of the old sections, or at the end when there were none. It fails, and the
// caller must write nothing, when an entry is invalid or the legacy content
// holds one of Aerostat's markers.
func (f File) Render(entries []Entry, legacy []byte) ([]byte, error) {
	for _, e := range entries {
		if err := checkIP(e.IP); err != nil {
			return nil, fmt.Errorf("rendering hosts block: %w", err)
		}
		if err := checkName(e.Hostname); err != nil {
			return nil, fmt.Errorf("rendering hosts block: %w", err)
		}
	}
	for i, line := range bytes.SplitAfter(legacy, []byte("\n")) {
		if m := marker(line); m != "" {
			return nil, fmt.Errorf("legacy hosts content line %d: holds the marker %q", i+1, m)
		}
	}
	var b bytes.Buffer
	b.Grow(len(f.Before) + len(f.After) + len(legacy) + 40*len(entries) + 64)
	b.Write(f.Before)
	if len(f.Before) > 0 && f.Before[len(f.Before)-1] != '\n' {
		b.WriteByte('\n')
	}
	if len(legacy) > 0 {
		b.WriteString(LegacyBeginMarker + "\n")
		b.Write(legacy)
		if legacy[len(legacy)-1] != '\n' {
			b.WriteByte('\n')
		}
		b.WriteString(LegacyEndMarker + "\n")
	}
	b.WriteString(BeginMarker + "\n")
	for _, e := range Normalize(entries) {
		b.WriteString(e.IP)
		b.WriteByte(' ')
		b.WriteString(e.Hostname)
		b.WriteByte('\n')
	}
	b.WriteString(EndMarker + "\n")
	b.Write(f.After)
	return b.Bytes(), nil
}
