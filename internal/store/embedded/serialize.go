package embedded

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// FerretDB v1 runs update, findAndModify and delete as "query, filter in
// Go, then write by _id" in separate SQLite transactions, so two concurrent
// compare-and-set updates on one document can both match and both report
// success (measured: 6 winners out of 30 on one document). The ledger's
// "a name is bound at most once" rests on single-document atomicity, which
// real MongoDB has. serializer restores it for the embedded store: a small
// wire-protocol proxy in front of FerretDB that lets one write command at a
// time through (request sent → reply received), while reads stay parallel.

const (
	opReply      = 1
	opQuery      = 2004
	opCompressed = 2012
	opMsg        = 2013

	flagMoreToCome = 1 << 1
	// maxMessageSize is MongoDB's maxMessageSizeBytes: the driver never
	// sends more, so a larger length is garbage or an attack.
	maxMessageSize = 48000000
	// firstChunk is what a message gets up front; the rest grows with the
	// bytes that really arrive, so a length header alone (a client that
	// claims 48 MB and sends nothing) costs no memory.
	firstChunk = 64 << 10
)

// readOnly commands need no serialising: they write nothing.
var readOnly = map[string]bool{
	"find": true, "getMore": true, "count": true, "distinct": true,
	"hello": true, "isMaster": true, "ismaster": true, "ping": true,
	"buildInfo": true, "buildinfo": true, "listCollections": true,
	"listIndexes": true, "listDatabases": true, "killCursors": true,
	"endSessions": true, "getParameter": true, "serverStatus": true,
	"connectionStatus": true, "dbStats": true, "collStats": true,
}

// limits bound what one client can hold.
type limits struct {
	// maxConns: connections past it are closed at once.
	maxConns int
	// idle: how long a connection may sit between requests.
	idle time.Duration
	// message: how long the rest of a request may take once its first
	// bytes arrived (slow-loris).
	message time.Duration
	log     logr.Logger
	// queryLog is Options.QueryLog; nil when unset.
	queryLog func(Query)
	// ids indexes each collection written to by _id (idindex.go); nil
	// leaves FerretDB's tables as they are.
	ids *idIndexer
}

type serializer struct {
	ln   net.Listener
	dial func() (net.Conn, error)
	lim  limits
	sem  chan struct{}

	writeMu sync.Mutex // held from a write's request until its reply

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newSerializer(ln net.Listener, dial func() (net.Conn, error), lim limits) *serializer {
	s := &serializer{ln: ln, dial: dial, lim: lim, sem: make(chan struct{}, lim.maxConns), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	return s
}

func (s *serializer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // listener closed by close()
		}
		select {
		case s.sem <- struct{}{}:
		default:
			s.lim.log.Info("store: connection refused, at the connection cap", "remote", c.RemoteAddr().String(), "max", s.lim.maxConns)
			_ = c.Close()
			continue
		}
		if !s.track(c) {
			_ = c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			defer s.untrack(c)
			// One client's malformed traffic must not take the store
			// down, but a panic is a bug: log it with its stack.
			defer func() {
				if r := recover(); r != nil {
					s.lim.log.Error(fmt.Errorf("panic: %v", r), "store: connection handler panicked", "remote", c.RemoteAddr().String(), "stack", string(debug.Stack()))
				}
			}()
			s.handle(c)
		}()
	}
}

// close stops accepting, drops every proxied connection and waits for the
// handlers to finish.
func (s *serializer) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *serializer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *serializer) untrack(c net.Conn) {
	_ = c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *serializer) handle(client net.Conn) {
	up, err := s.dial()
	if err != nil {
		return
	}
	if !s.track(up) {
		_ = up.Close()
		return
	}
	defer s.untrack(up)

	cr, ur := bufio.NewReader(client), bufio.NewReader(up)
	for {
		req, err := s.readRequest(client, cr)
		if err != nil {
			return
		}
		reply, err := s.roundTrip(up, ur, req)
		if err != nil {
			return
		}
		if reply == nil {
			continue
		}
		if _, err := client.Write(reply); err != nil {
			return
		}
		if moreToCome(reply) {
			// An exhaust stream (streaming hello): replies keep coming
			// without requests, so stop framing and just pipe bytes.
			go func() { _, _ = io.Copy(client, ur); _ = client.Close() }()
			_, _ = io.Copy(up, cr)
			return
		}
	}
}

// roundTrip forwards one request and returns its reply (nil when the
// request expects none: its reply from FerretDB is read and dropped),
// holding writeMu for write commands.
func (s *serializer) roundTrip(up net.Conn, ur *bufio.Reader, req []byte) ([]byte, error) {
	if isWrite(req) {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
		defer s.indexByID(req)
		if p, ok := planByID(req); ok {
			reply, err := s.byID(up, ur, req, p)
			if err != nil || reply != nil {
				return reply, err
			}
		}
	}
	s.logQueries(req)
	if _, err := up.Write(req); err != nil {
		return nil, err
	}
	reply, err := readMessage(ur)
	if err != nil {
		return nil, err
	}
	if moreToCome(req) {
		// An unacknowledged write (w=0, 1.x's pymongo.Connection): the
		// client expects no reply, but FerretDB v1 sends one for every
		// request. Passed on, it would answer the client's next request
		// (pymongo: "Got response id ... but expected ..."); dropped here,
		// after it arrived, the write is also done before the next one
		// starts, as writeMu means.
		return nil, nil
	}
	return reply, nil
}

// readRequest reads one client request under the idle and message
// deadlines: the connection may wait lim.idle for a request to start, and
// then has lim.message to send the rest of it.
func (s *serializer) readRequest(c net.Conn, r *bufio.Reader) ([]byte, error) {
	if s.lim.idle > 0 {
		_ = c.SetReadDeadline(time.Now().Add(s.lim.idle))
	}
	if _, err := r.Peek(1); err != nil {
		return nil, err
	}
	if s.lim.message > 0 {
		_ = c.SetReadDeadline(time.Now().Add(s.lim.message))
	}
	msg, err := readMessage(r)
	_ = c.SetReadDeadline(time.Time{})
	return msg, err
}

// readMessage reads one wire message. Its length is checked before
// anything is allocated, and memory grows with the bytes received.
func readMessage(r *bufio.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(int32(binary.LittleEndian.Uint32(hdr[:])))
	if n < 16 || n > maxMessageSize {
		return nil, fmt.Errorf("wire message length %d out of range", n)
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(n, firstChunk)))
	buf.Write(hdr[:])
	if _, err := io.CopyN(buf, r, int64(n-4)); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

func opCode(msg []byte) int32 { return int32(binary.LittleEndian.Uint32(msg[12:16])) }

func moreToCome(msg []byte) bool {
	return opCode(msg) == opMsg && len(msg) >= 20 && binary.LittleEndian.Uint32(msg[16:20])&flagMoreToCome != 0
}

// isWrite reports whether a request may write. Anything it cannot parse
// counts as a write: serialising too much is only slower.
func isWrite(msg []byte) bool {
	if opCode(msg) != opMsg {
		return true
	}
	name, err := commandName(msg)
	if err != nil {
		return true
	}
	return !readOnly[name]
}

// commandName returns the first key of an OP_MSG's body section.
func commandName(msg []byte) (string, error) {
	if len(msg) < 21 {
		return "", errors.New("short OP_MSG")
	}
	b := msg[20:]
	for len(b) > 0 {
		kind := b[0]
		b = b[1:]
		if len(b) < 4 {
			return "", errors.New("short section")
		}
		size := int(int32(binary.LittleEndian.Uint32(b)))
		if size < 5 || size > len(b) {
			return "", errors.New("bad section size")
		}
		if kind == 0 {
			doc := b[4:size] // first element: type byte, then the key as a cstring
			if len(doc) < 2 {
				return "", errors.New("empty body")
			}
			end := bytes.IndexByte(doc[1:], 0)
			if end < 0 {
				return "", errors.New("unterminated key")
			}
			return string(doc[1 : 1+end]), nil
		}
		b = b[size:]
	}
	return "", errors.New("no body section")
}

// indexByID gives the collection a write went to its _id index, once
// (idindex.go). The caller holds writeMu, so no write of this store runs
// meanwhile.
func (s *serializer) indexByID(req []byte) {
	if s.lim.ids == nil {
		return
	}
	db, coll, ok := target(req)
	if !ok {
		return
	}
	if name, _ := commandName(req); dropping[name] {
		s.lim.ids.forget(db) // a collection made again gets a new table
		return
	}
	if err := s.lim.ids.ensure(context.Background(), db, coll); err != nil {
		s.lim.log.Info("store: _id index not built; exact-_id reads of this collection walk its rows", "db", db, "collection", coll, "err", err.Error())
	}
}
