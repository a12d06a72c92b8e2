package cloud

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"
	smithytime "github.com/aws/smithy-go/time"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// The lean DescribeInstances decoder.
//
// The SDK decodes every field of every instance of a page (network
// interfaces, block devices, ...) through encoding/xml, about 28 ms of CPU a
// 1,000-instance page on the bench machine and most of an idle controller's
// pass. List reads six fields. leanDescribe swaps the SDK's
// "OperationDeserializer" of DescribeInstances for one that reads the page
// into a reused buffer and picks out those fields in one pass over the bytes.
// Everything else of the SDK stays: signing, the retryer, our call budget
// (Finalize step), the paginator (it reads NextToken from the output we
// return) and the error path.
//
// Contract with the SDK's decoder, which the table and fuzz tests check:
//   - A response that is not a 2xx, or a transport error, goes to the SDK's
//     own deserializer untouched, so API errors, throttling (IsThrottled) and
//     retries behave exactly as without the lean decoder.
//   - The lean decoder accepts a strict subset of XML (no comments, CDATA,
//     DOCTYPE, namespace prefixes on elements, non-ASCII names, \r in text,
//     anything but a UTF-8 "xml" declaration before the root). On anything
//     outside that subset, or a malformed document, or a launchTime the SDK
//     would not parse, it gives up and the SDK's deserializer decodes the
//     same bytes, so the result (or error) is the SDK's.
//   - On what it accepts it yields exactly what instanceOf makes of the SDK's
//     output: names matched case-insensitively as the SDK does, later
//     duplicates winning, tags of repeated tagSets merged, entities decoded as
//     encoding/xml does.
//   - The one deliberate difference: a malformed value in a field List never
//     reads (say <amiLaunchIndex>x</amiLaunchIndex>) fails the whole page in
//     the SDK and is ignored here. The document must still be well-formed XML.

// leanKey carries a page's instances from the deserializer to List in the
// operation's result metadata.
type leanKey struct{}

// leanDescribe is a per-call API option for DescribeInstances.
func (e *EC2) leanDescribe(s *middleware.Stack) error {
	if e.sdkDecoding {
		return nil
	}
	sdk, ok := s.Deserialize.Get("OperationDeserializer")
	if !ok {
		// Not the stack we know: leave the SDK alone.
		return nil
	}
	_, err := s.Deserialize.Swap("OperationDeserializer", &leanDeserializer{sdk: sdk, bufs: &e.bufs, fallbacks: e.fallbacks.Add})
	return err
}

type leanDeserializer struct {
	sdk       middleware.DeserializeMiddleware
	bufs      *sync.Pool
	fallbacks func(int64) int64
}

func (*leanDeserializer) ID() string { return "OperationDeserializer" }

func (d *leanDeserializer) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
	out, md, err := next.HandleDeserialize(ctx, in)
	resp, ok := out.RawResponse.(*smithyhttp.Response)
	if err != nil || !ok || resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return d.sdk.HandleDeserialize(ctx, in, replay(out, md, err))
	}
	buf, _ := d.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer d.bufs.Put(buf)
	buf.Reset()
	_, readErr := buf.ReadFrom(resp.Body)
	var page leanPage
	if readErr == nil && page.decode(buf.Bytes()) {
		smithyhttp.CloseResponseBody(ctx, resp, false, nil)
		md.Set(leanKey{}, page.instances)
		out.Result = &ec2.DescribeInstancesOutput{NextToken: page.nextToken}
		return out, md, nil
	}
	d.fallbacks(1)
	// The SDK reads the same bytes (and the same read error, if any) and
	// closes the real body when it is done.
	body := append([]byte(nil), buf.Bytes()...)
	resp.Body = replayBody{Reader: io.MultiReader(bytes.NewReader(body), errReader{readErr}), Closer: resp.Body}
	return d.sdk.HandleDeserialize(ctx, in, replay(out, md, nil))
}

func replay(out middleware.DeserializeOutput, md middleware.Metadata, err error) middleware.DeserializeHandler {
	return middleware.DeserializeHandlerFunc(func(context.Context, middleware.DeserializeInput) (middleware.DeserializeOutput, middleware.Metadata, error) {
		return out, md, err
	})
}

type replayBody struct {
	io.Reader
	io.Closer
}

// errReader ends a replayed body as the real one ended: io.EOF or its error.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) {
	if r.err == nil {
		return 0, io.EOF
	}
	return 0, r.err
}

// leanPage is one decoded DescribeInstances page.
type leanPage struct {
	nextToken *string
	instances []naming.Instance
	sc        scanner
	strs      map[string]string // interned: a fleet repeats tag keys, values and states
	// Instances whose tags came in the same order with the same values
	// share one map (see tagSet); pairs is the current instance's tags,
	// key then value, and setKey their encoding.
	sets   map[string]map[string]string
	pairs  []string
	setKey []byte
}

// decode reports false when the page must go to the SDK's decoder.
func (p *leanPage) decode(b []byte) bool {
	p.sc = scanner{b: b}
	if !p.sc.prolog() {
		return false
	}
	k, _ := p.sc.next()
	switch k {
	case tokEOF:
		return true // the SDK returns an empty output for an empty body
	case tokStart:
	default:
		return false
	}
	return p.children(func(name []byte) bool {
		switch {
		case nameIs(name, "nextToken"):
			v, ok := p.sc.value()
			p.nextToken = &v
			return ok
		case nameIs(name, "reservationSet"):
			return p.children(func(name []byte) bool {
				if !nameIs(name, "item") {
					return p.sc.skip()
				}
				return p.children(func(name []byte) bool {
					if !nameIs(name, "instancesSet") {
						return p.sc.skip()
					}
					return p.children(p.instanceItem)
				})
			})
		}
		return p.sc.skip()
	})
}

// children calls child with the name of each child element of the element
// just opened (child must consume it) and returns at its end.
func (p *leanPage) children(child func(name []byte) bool) bool {
	for {
		k, name := p.sc.next()
		switch k {
		case tokText:
		case tokEnd:
			return true
		case tokStart:
			if !child(name) {
				return false
			}
		default:
			return false
		}
	}
}

func (p *leanPage) instanceItem(name []byte) bool {
	if !nameIs(name, "item") {
		return p.sc.skip()
	}
	var in naming.Instance
	p.pairs = p.pairs[:0]
	ok := p.children(func(name []byte) bool {
		var ok bool
		switch {
		case nameIs(name, "instanceId"):
			in.ID, ok = p.sc.value()
		case nameIs(name, "privateIpAddress"):
			in.PrivateIP, ok = p.sc.value()
		case nameIs(name, "launchTime"):
			var v string
			if v, ok = p.sc.value(); ok {
				t, err := smithytime.ParseDateTime(v)
				in.LaunchTime, ok = t, err == nil
			}
		case nameIs(name, "instanceState"):
			ok = p.children(func(name []byte) bool {
				if !nameIs(name, "name") {
					return p.sc.skip()
				}
				v, ok := p.sc.value()
				in.State = naming.InstanceState(p.intern(v))
				return ok
			})
		case nameIs(name, "tagSet"):
			ok = p.children(func(name []byte) bool {
				if !nameIs(name, "item") {
					return p.sc.skip()
				}
				return p.tag()
			})
		default:
			ok = p.sc.skip()
		}
		return ok
	})
	in.Tags = p.tagSet()
	p.instances = append(p.instances, in)
	return ok
}

// tagSet is the map of the current instance's tags. It is shared with
// every earlier instance of the page whose tags came in the same order
// with the same values, as the instances of one Auto Scaling group or
// launch template do: a map of a few tags is about 300 bytes, and one
// per instance was the biggest part of a 50,000-instance listing. The
// maps are read-only (naming.Instance.Tags says so); later duplicates of
// a key win, as in the SDK's decoding.
func (p *leanPage) tagSet() map[string]string {
	p.setKey = p.setKey[:0]
	for _, s := range p.pairs {
		// Length-prefixed, so no two different lists encode alike.
		p.setKey = binary.AppendUvarint(p.setKey, uint64(len(s)))
		p.setKey = append(p.setKey, s...)
	}
	if m, ok := p.sets[string(p.setKey)]; ok {
		return m
	}
	m := make(map[string]string, len(p.pairs)/2)
	for i := 0; i+1 < len(p.pairs); i += 2 {
		m[p.intern(p.pairs[i])] = p.intern(p.pairs[i+1])
	}
	if p.sets == nil {
		p.sets = map[string]map[string]string{}
	}
	p.sets[string(p.setKey)] = m
	return m
}

func (p *leanPage) tag() bool {
	var key, value string
	ok := p.children(func(name []byte) bool {
		var ok bool
		switch {
		case nameIs(name, "key"):
			key, ok = p.sc.value()
		case nameIs(name, "value"):
			value, ok = p.sc.value()
		default:
			ok = p.sc.skip()
		}
		return ok
	})
	p.pairs = append(p.pairs, key, value)
	return ok
}

// intern shares the strings a page repeats (tag keys, states).
func (p *leanPage) intern(s string) string {
	if k, seen := p.strs[s]; seen {
		return k
	}
	if p.strs == nil {
		p.strs = map[string]string{}
	}
	p.strs[s] = s
	return s
}

// nameIs is strings.EqualFold for the ASCII names the scanner lets through.
func nameIs(name []byte, want string) bool {
	if len(name) != len(want) {
		return false
	}
	for i := range len(name) {
		if lowerASCII(name[i]) != lowerASCII(want[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

type tokKind int

const (
	tokFail tokKind = iota // outside the subset, or malformed
	tokEOF
	tokText
	tokStart
	tokEnd
)

// scanner tokenizes the XML subset the lean decoder accepts. It checks
// well-formedness as encoding/xml does for that subset: matching end tags,
// quoted attribute values, entities, the XML character range, UTF-8.
type scanner struct {
	b       []byte
	i       int
	open    [][]byte // names of the open elements
	selfEnd bool     // the last start tag was <x/>: its end comes next
	// closedRoot: the root element ended; the SDK reads no further.
	closedRoot bool
	text       []byte // the raw text of the last tokText
}

// maxDepth bounds the element nesting the lean decoder follows; deeper
// pages go to the SDK.
const maxDepth = 256

var xmlDecls = [][]byte{
	[]byte(`<?xml version="1.0" encoding="UTF-8"?>`),
	[]byte(`<?xml version="1.0"?>`),
}

// prolog consumes an XML declaration EC2 sends and the white space around it.
func (s *scanner) prolog() bool {
	for _, d := range xmlDecls {
		if bytes.HasPrefix(s.b, d) {
			s.i = len(d)
			break
		}
	}
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
	return s.i == len(s.b) || s.b[s.i] == '<'
}

// next returns the next token; for tokStart and tokEnd, the element name.
// After the root element ends it returns tokEOF: the SDK reads no further.
func (s *scanner) next() (tokKind, []byte) {
	if s.selfEnd {
		s.selfEnd = false
		return s.pop()
	}
	if s.closedRoot {
		return tokEOF, nil
	}
	if s.i >= len(s.b) {
		if len(s.open) > 0 {
			return tokFail, nil
		}
		return tokEOF, nil
	}
	if s.b[s.i] != '<' {
		if len(s.open) == 0 {
			return tokFail, nil
		}
		j := bytes.IndexByte(s.b[s.i:], '<')
		if j < 0 {
			return tokFail, nil
		}
		s.text = s.b[s.i : s.i+j]
		s.i += j
		if !validText(s.text) {
			return tokFail, nil
		}
		return tokText, nil
	}
	s.i++
	if s.i < len(s.b) && s.b[s.i] == '/' {
		s.i++
		name := s.name()
		s.space()
		if name == nil || s.i >= len(s.b) || s.b[s.i] != '>' || len(s.open) == 0 || !bytes.Equal(name, s.open[len(s.open)-1]) {
			return tokFail, nil
		}
		s.i++
		return s.pop()
	}
	name := s.name()
	if name == nil || len(s.open) >= maxDepth {
		return tokFail, nil
	}
	for {
		sp := s.space()
		if s.i >= len(s.b) {
			return tokFail, nil
		}
		switch s.b[s.i] {
		case '>':
			s.i++
			s.open = append(s.open, name)
			return tokStart, name
		case '/':
			if s.i+1 >= len(s.b) || s.b[s.i+1] != '>' {
				return tokFail, nil
			}
			s.i += 2
			s.open = append(s.open, name)
			s.selfEnd = true
			return tokStart, name
		}
		if !sp || !s.attr() {
			return tokFail, nil
		}
	}
}

func (s *scanner) pop() (tokKind, []byte) {
	name := s.open[len(s.open)-1]
	s.open = s.open[:len(s.open)-1]
	s.closedRoot = len(s.open) == 0
	return tokEnd, name
}

// name reads [A-Za-z_][A-Za-z0-9_.-]*, nil if there is none. Prefixed and
// non-ASCII names are outside the subset.
func (s *scanner) name() []byte {
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '_' || 'a' <= c|0x20 && c|0x20 <= 'z' || s.i > start && ('0' <= c && c <= '9' || c == '.' || c == '-') {
			s.i++
			continue
		}
		break
	}
	if s.i == start {
		return nil
	}
	return s.b[start:s.i]
}

// space skips white space and reports whether there was any.
func (s *scanner) space() bool {
	start := s.i
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
	return s.i > start
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// attr consumes name="value" (or 'value'), the name with at most one
// prefix (xmlns:ec2).
func (s *scanner) attr() bool {
	if s.name() == nil {
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == ':' {
		s.i++
		if s.name() == nil {
			return false
		}
	}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '=' {
		return false
	}
	s.i++
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' && s.b[s.i] != '\'' {
		return false
	}
	q := s.b[s.i]
	s.i++
	j := bytes.IndexByte(s.b[s.i:], q)
	if j < 0 {
		return false
	}
	v := s.b[s.i : s.i+j]
	s.i += j + 1
	return bytes.IndexByte(v, '<') < 0 && validChars(v, true)
}

// value reads the text of a simple element just opened, as the SDK's
// NodeDecoder.Value does: text then the end tag, or the end tag alone ("").
func (s *scanner) value() (string, bool) {
	k, _ := s.next()
	if k == tokEnd {
		return "", true
	}
	if k != tokText {
		return "", false
	}
	raw := s.text
	if k, _ := s.next(); k != tokEnd {
		return "", false
	}
	return unescape(raw), true
}

// skip consumes the element just opened, as encoding/xml's Skip does.
func (s *scanner) skip() bool {
	for depth := 0; ; {
		switch k, _ := s.next(); k {
		case tokStart:
			depth++
		case tokEnd:
			if depth == 0 {
				return true
			}
			depth--
		case tokText:
		default:
			return false
		}
	}
}

func validText(b []byte) bool { return validChars(b, false) }

// validChars checks text as encoding/xml's Decoder.text does in strict
// mode; inAttr: an attribute value, where \r and "]]>" are allowed.
func validChars(b []byte, inAttr bool) bool {
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '&':
			_, n := entity(b[i:])
			if n == 0 {
				return false
			}
			i += n
			continue
		case c == '\r':
			if !inAttr {
				return false // encoding/xml rewrites it; the subset has none
			}
		case c == ']':
			if !inAttr && i+2 < len(b) && b[i+1] == ']' && b[i+2] == '>' {
				return false
			}
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 || !inCharRange(r) {
				return false
			}
			i += size
			continue
		case c < 0x20 && c != '\t' && c != '\n':
			return false
		}
		i++
	}
	return true
}

var entities = map[string]rune{"lt": '<', "gt": '>', "amp": '&', "apos": '\'', "quot": '"'}

// entity decodes the reference at the start of b ("&amp;", "&#38;",
// "&#x26;") and returns the rune and the reference's length, 0 when
// encoding/xml would refuse it.
func entity(b []byte) (rune, int) {
	end := bytes.IndexByte(b, ';')
	if end < 2 || end > 16 {
		return 0, 0
	}
	ref := b[1:end]
	if ref[0] != '#' {
		r, ok := entities[string(ref)]
		if !ok {
			return 0, 0
		}
		return r, end + 1
	}
	digits, base := ref[1:], 10
	if len(digits) > 0 && digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	n, err := strconv.ParseUint(string(digits), base, 64)
	if err != nil || n > utf8.MaxRune {
		return 0, 0
	}
	// As string(rune(n)): surrogates become U+FFFD.
	r, _ := utf8.DecodeRuneInString(string(rune(n)))
	if !inCharRange(r) {
		return 0, 0
	}
	return r, end + 1
}

// inCharRange is the Char production of XML 1.0, as encoding/xml checks it.
func inCharRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// unescape decodes the entities of text validText accepted.
func unescape(b []byte) string {
	i := bytes.IndexByte(b, '&')
	if i < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i >= 0 {
		out = append(out, b[:i]...)
		r, n := entity(b[i:])
		out = utf8.AppendRune(out, r)
		b = b[i+n:]
		i = bytes.IndexByte(b, '&')
	}
	return string(append(out, b...))
}
