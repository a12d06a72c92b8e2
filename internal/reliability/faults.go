package reliability

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// Proxy is a TCP proxy in front of a MongoDB-wire store that injects the
// faults a network and a failing server produce: the store down
// (connections dropped and refused), slow (every request delayed), and
// replies lost (the request reaches the store and is executed, the
// connection dies before the reply: the client cannot tell whether its
// write happened). It is safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	down      atomic.Bool
	stalled   atomic.Bool
	latency   atomic.Int64
	mu2       sync.Mutex
	passFirst int // replies to forward before losing one
	dropReply int // replies still to lose
	injected  atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy listens on a free 127.0.0.1 port and forwards to target (host:port).
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDown drops every connection and refuses new ones while on.
func (p *Proxy) SetDown(on bool) {
	p.down.Store(on)
	if on {
		p.injected.Add(1)
		p.dropAll()
	}
}

// SetStalled makes the store stuck while on: connections stay open and
// new ones are accepted, but requests are swallowed and no reply comes (a
// half-open connection, a hung server). Each swallowed request counts as
// an injected fault.
func (p *Proxy) SetStalled(on bool) { p.stalled.Store(on) }

// SetLatency delays every request by d.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// DropReplies makes the next n replies from the store get lost: the
// connection that would carry each is closed instead.
func (p *Proxy) DropReplies(n int) { p.DropReplyAfter(0, n) }

// DropReplyAfter forwards the next k replies, then loses n.
func (p *Proxy) DropReplyAfter(k, n int) {
	p.mu2.Lock()
	defer p.mu2.Unlock()
	p.passFirst, p.dropReply = k, n
}

// loseReply decides the fate of one reply.
func (p *Proxy) loseReply() bool {
	p.mu2.Lock()
	defer p.mu2.Unlock()
	if p.dropReply <= 0 {
		return false
	}
	if p.passFirst > 0 {
		p.passFirst--
		return false
	}
	p.dropReply--
	return true
}

// Injected counts faults injected (downs and lost replies).
func (p *Proxy) Injected() int64 { return p.injected.Load() }

// Close stops the proxy and drops its connections.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.dropAll()
	p.wg.Wait()
}

func (p *Proxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

func (p *Proxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		_ = c.Close()
	}
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			_ = c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.track(c, up)
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c, up)
			p.pipe(up, c, true)
		}()
		go func() {
			defer p.wg.Done()
			defer p.untrack(c, up)
			p.pipe(c, up, false)
		}()
	}
}

// pipe copies src to dst chunk by chunk, applying faults: latency on
// requests, lost replies on replies.
func (p *Proxy) pipe(dst io.Writer, src io.Reader, request bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if p.down.Load() {
				return
			}
			if request && p.stalled.Load() {
				p.injected.Add(1)
				continue
			}
			if request {
				if d := time.Duration(p.latency.Load()); d > 0 {
					time.Sleep(d)
				}
			} else if p.loseReply() {
				p.injected.Add(1)
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// ErrStopped is what a StopAfter store returns once it has stopped.
var ErrStopped = errors.New("controller stopped")

// StopAfter wraps a ledger.Store for crash tests: Apply writes one change
// at a time and, after the k-th committed write in total, calls Stop (e.g.
// a context's cancel, as when the controller process is killed). Writes
// after that fail with the context's error or ErrStopped, unless KeepGoing
// is set (Stop then only injects a fault, e.g. into a Proxy). Reads pass
// through.
type StopAfter struct {
	ledger.Store
	K         int
	Stop      func()
	KeepGoing bool

	mu      sync.Mutex
	writes  int
	stopped bool
}

// Apply implements ledger.Store.
func (s *StopAfter) Apply(ctx context.Context, changes []naming.Change) (int, error) {
	for i, c := range changes {
		s.mu.Lock()
		stopped := s.stopped || s.writes >= s.K
		if stopped && !s.stopped {
			s.stopped = true
			if s.Stop != nil {
				s.Stop()
			}
		}
		s.mu.Unlock()
		if stopped && !s.KeepGoing {
			if err := ctx.Err(); err != nil {
				return i, err
			}
			return i, ErrStopped
		}
		if _, err := s.Store.Apply(ctx, []naming.Change{c}); err != nil {
			return i, err
		}
		s.mu.Lock()
		s.writes++
		s.mu.Unlock()
	}
	return len(changes), nil
}

// Writes is how many changes were committed through s.
func (s *StopAfter) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}
