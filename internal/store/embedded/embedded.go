// Package embedded runs FerretDB v1 (SQLite backend) in-process as a
// MongoDB-wire server, so the ledger's mongo-driver code runs with nothing
// installed: tests, the demo and `aerostat store` on a single host.
package embedded

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/go-logr/logr"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// DefaultListen binds a free port on the loopback interface.
const DefaultListen = "127.0.0.1:0"

// Options configure Start.
type Options struct {
	// DataDir holds the SQLite files; created if missing. Required.
	DataDir string
	// Listen is the TCP address; DefaultListen when empty. Port 0 picks a
	// free port (see Server.URI for the bound one).
	Listen string
	// Logger receives FerretDB's warnings and errors; its info and debug
	// chatter (a line per connection) is dropped. The zero value discards.
	Logger logr.Logger
	// ReadyTimeout bounds the wait for the first successful ping; 10s when zero.
	ReadyTimeout time.Duration
	// TLS, when set, serves TLS; with ClientCAs and
	// tls.RequireAndVerifyClientCert it is how clients authenticate.
	// FerretDB v1 on SQLite has no users, so authentication lives in the
	// proxy in front of it (serialize.go): a client must present a
	// certificate signed by ClientCAs before any byte reaches FerretDB.
	// Required when Listen is not a loopback address, unless Insecure.
	TLS *tls.Config
	// Insecure allows a non-loopback Listen without client certificates
	// (a pod reachable only through a NetworkPolicy, say).
	Insecure bool
	// MaxConns bounds open client connections (default 256); more are
	// closed at once.
	MaxConns int
	// IdleTimeout closes a connection that sends no request for that long
	// (default 10 min; the driver reconnects). MessageTimeout bounds the
	// time from a request's first byte to its last (default 30 s), so a
	// client that sends a little and stalls is cut off.
	IdleTimeout, MessageTimeout time.Duration
	// QueryLog, when set, is called with every filtered command FerretDB
	// receives (from the serializer's goroutines, concurrently): tests use
	// it to catch a query that scans a collection.
	QueryLog func(Query)
}

// checkAuth refuses to serve a non-loopback address to unauthenticated
// clients.
func checkAuth(o Options, addr net.Addr) error {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() || o.Insecure {
		return nil
	}
	if o.TLS == nil || o.TLS.ClientCAs == nil || o.TLS.ClientAuth != tls.RequireAndVerifyClientCert {
		return fmt.Errorf("embedded store: %s is not a loopback address and clients would not be authenticated: give a server certificate and a client CA (aerostat store --tls-cert-file, --tls-key-file, --client-ca-file), or listen on 127.0.0.1", addr)
	}
	return nil
}

// Server is a running embedded store.
type Server struct {
	uri     string
	proxy   *serializer
	cancel  context.CancelFunc
	done    chan struct{}
	sockDir string
	once    sync.Once
}

// ferretdb.New writes a process-wide version variable; serialising Start
// keeps concurrent starts (parallel tests) free of data races.
var startMu sync.Mutex

// withDefaults fills in the options left zero and creates the data dir,
// returning its absolute path.
func (o Options) withDefaults() (Options, string, error) {
	if o.DataDir == "" {
		return o, "", errors.New("embedded store: data dir is empty")
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 256
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.MessageTimeout <= 0 {
		o.MessageTimeout = 30 * time.Second
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return o, "", fmt.Errorf("embedded store: data dir %q: %w", o.DataDir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return o, "", fmt.Errorf("embedded store: creating data dir %q: %w", dir, err)
	}
	return o, dir, nil
}

// listen binds the clients' address, refusing a non-loopback one that
// would not authenticate them (checkAuth), with TLS when configured.
func listen(o Options) (net.Listener, error) {
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded store: listening on %s: %w", o.Listen, err)
	}
	if err := checkAuth(o, ln.Addr()); err != nil {
		_ = ln.Close()
		return nil, err
	}
	if o.TLS != nil {
		ln = tls.NewListener(ln, o.TLS)
	}
	return ln, nil
}

// Start starts the server and returns once it answers a ping on its TCP
// address. Errors: bad options, an unusable DataDir, an address that cannot
// be bound, or a server that does not answer within ReadyTimeout; nothing
// is left running on error.
func Start(ctx context.Context, opts Options) (*Server, error) {
	opts, dir, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ln, err := listen(opts)
	if err != nil {
		return nil, err
	}
	// FerretDB itself listens on a private Unix socket; clients reach it
	// only through the serializer (see serialize.go).
	sockDir, err := os.MkdirTemp("", "aerostat-store-")
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("embedded store: creating socket dir: %w", err)
	}
	sock := filepath.Join(sockDir, "ferretdb.sock")

	startMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{Unix: sock},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    slog.New(warnHandler{logr.ToSlogHandler(orDiscard(opts.Logger))}),
	})
	startMu.Unlock()
	if err != nil {
		_ = ln.Close()
		_ = os.RemoveAll(sockDir)
		return nil, fmt.Errorf("embedded store: starting FerretDB on %s: %w", dir, err)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	s := &Server{
		uri:     (&url.URL{Scheme: "mongodb", Host: ln.Addr().String(), Path: "/"}).String(),
		cancel:  cancel,
		done:    make(chan struct{}),
		sockDir: sockDir,
	}
	go func() {
		defer close(s.done)
		_ = f.Run(runCtx) // always nil; it returns when runCtx ends
	}()
	s.proxy = newSerializer(ln, func() (net.Conn, error) { return net.Dial("unix", sock) },
		limits{maxConns: opts.MaxConns, idle: opts.IdleTimeout, message: opts.MessageTimeout, log: orDiscard(opts.Logger),
			queryLog: opts.QueryLog, ids: &idIndexer{dir: dir}})

	// With TLS the readiness ping goes to FerretDB's own socket: this
	// process holds no client certificate.
	pingURI := s.uri
	if opts.TLS != nil {
		pingURI = "mongodb://" + url.PathEscape(sock) + "/"
	}
	if err := ping(ctx, pingURI, opts.ReadyTimeout); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("embedded store: waiting for %s: %w", s.uri, err)
	}
	return s, nil
}

// URI is the mongodb:// URI of the bound address, e.g. mongodb://127.0.0.1:41234/.
func (s *Server) URI() string { return s.uri }

// Close stops the server, drops client connections and frees the port.
// Safe to call more than once.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.proxy.close()
		s.cancel()
		<-s.done
		err = os.RemoveAll(s.sockDir)
	})
	return err
}

func ping(ctx context.Context, uri string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(timeout))
	if err != nil {
		return err
	}
	defer func() { _ = c.Disconnect(context.Background()) }()
	return c.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
}

func orDiscard(l logr.Logger) logr.Logger {
	if l.GetSink() == nil {
		return logr.Discard()
	}
	return l
}

// warnHandler drops records below slog.LevelWarn: FerretDB logs every
// connection at info, which would drown Aerostat's one-line-per-change logs.
// It also drops the request/response dumps FerretDB logs at warn for every
// command that fails (a duplicate key, the driver's endSessions): the
// client gets those errors anyway.
type warnHandler struct{ slog.Handler }

func (h warnHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h warnHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "Request ") || strings.HasPrefix(r.Message, "Response ") {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h warnHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return warnHandler{h.Handler.WithAttrs(a)}
}

func (h warnHandler) WithGroup(name string) slog.Handler {
	return warnHandler{h.Handler.WithGroup(name)}
}
