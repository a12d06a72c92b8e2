package embedded

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A store on a non-loopback address without client certificates is
// refused at start, naming the flags that fix it.
func TestStartRefusesOpenNonLoopback(t *testing.T) {
	_, err := Start(context.Background(), Options{DataDir: t.TempDir(), Listen: "0.0.0.0:0"})
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") || !strings.Contains(err.Error(), "--client-ca-file") {
		t.Fatalf("Start on 0.0.0.0 without auth = %v; want a refusal", err)
	}
}

// certs makes a CA and a server and a client certificate signed by it.
func certs(t *testing.T) (ca *x509.CertPool, server, client tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	ca = x509.NewCertPool()
	ca.AddCert(caCert)
	leaf := func(serial int64, usage x509.ExtKeyUsage) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	return ca, leaf(2, x509.ExtKeyUsageServerAuth), leaf(3, x509.ExtKeyUsageClientAuth)
}

// On 0.0.0.0 with mutual TLS: a client without a certificate gets nothing
// from the store; one with a certificate from the client CA is served.
func TestMutualTLSAuthenticates(t *testing.T) {
	ca, server, client := certs(t)
	srv, err := Start(context.Background(), Options{DataDir: t.TempDir(), Listen: "0.0.0.0:0",
		TLS: &tls.Config{Certificates: []tls.Certificate{server}, ClientCAs: ca, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	_, port, _ := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(srv.URI(), "mongodb://"), "/"))
	uri := "mongodb://127.0.0.1:" + port + "/"
	ping := func(cfg *tls.Config) error {
		c, err := mongo.Connect(options.Client().ApplyURI(uri).SetTLSConfig(cfg).SetServerSelectionTimeout(3 * time.Second))
		if err != nil {
			return err
		}
		defer func() { _ = c.Disconnect(context.Background()) }()
		return c.Database("admin").RunCommand(context.Background(), bson.D{{Key: "ping", Value: 1}}).Err()
	}
	if err := ping(&tls.Config{RootCAs: ca, MinVersion: tls.VersionTLS12}); err == nil {
		t.Error("a client without a certificate was served")
	}
	if err := ping(&tls.Config{RootCAs: ca, Certificates: []tls.Certificate{client}, MinVersion: tls.VersionTLS12}); err != nil {
		t.Errorf("a client with a certificate from the client CA: %v", err)
	}
	// Plain TCP: the first bytes of a wire message are not a TLS hello.
	conn, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write(buildMsg(t, 0, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}}))
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	if b, _ := io.ReadAll(conn); bytes.Contains(b, []byte("ok")) {
		t.Error("a plain-TCP client got a reply")
	}
}

func startLimited(t *testing.T, o Options) string {
	t.Helper()
	o.DataDir = t.TempDir()
	srv, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return strings.TrimSuffix(strings.TrimPrefix(srv.URI(), "mongodb://"), "/")
}

// closedByServer reads conn until the server closes it, and fails the test
// if that takes a minute (far past any deadline under test).
func closedByServer(t *testing.T, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	_, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept the connection open for a minute")
	}
}

// Slow-loris: a client that sends part of a request and stalls, and one
// that connects and sends nothing, are both cut off by the deadlines.
func TestSlowClientsAreCutOff(t *testing.T) {
	addr := startLimited(t, Options{MessageTimeout: 200 * time.Millisecond, IdleTimeout: 400 * time.Millisecond})
	msg := buildMsg(t, 0, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})
	for name, send := range map[string][]byte{"half a request": msg[:len(msg)/2], "nothing": nil} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(send); err != nil {
				t.Fatal(err)
			}
			closedByServer(t, conn)
		})
	}
}

// A length header past MongoDB's limit closes the connection; one within
// it whose body never comes costs memory only for the bytes received.
func TestOversizedMessages(t *testing.T) {
	// Deadlines longer than closedByServer waits: only the length check
	// can close this connection in time.
	addr := startLimited(t, Options{MessageTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var hdr [16]byte
	binary.LittleEndian.PutUint32(hdr[:], 1<<30)
	binary.LittleEndian.PutUint32(hdr[12:], opMsg)
	if _, err := conn.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	closedByServer(t, conn)
}

// readMessage, with no server running (its allocations would blur the
// count): 40 MB announced and 1 KiB sent costs well under 1 MiB.
func TestReadMessageAllocatesWhatArrives(t *testing.T) {
	in := make([]byte, 4+1024)
	binary.LittleEndian.PutUint32(in, 40<<20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := readMessage(bufio.NewReader(bytes.NewReader(in)))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short body: %v, want unexpected EOF", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("reading a 40 MB header with 1 KiB of body allocated %d bytes", grew)
	}
}

// pingConn sends a ping over conn and waits for the reply, proving the
// server is handling the connection.
func pingConn(t *testing.T, conn net.Conn) {
	t.Helper()
	if _, err := conn.Write(buildMsg(t, 0, bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}})); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := readMessage(bufio.NewReader(conn)); err != nil {
		t.Fatalf("no reply to ping: %v", err)
	}
}

// Past MaxConns a new connection is closed at once; the ones inside keep
// working. The upstream is an echo server (each request comes back as its
// reply), so only the test's connections count.
func TestConnectionCap(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newSerializer(ln, func() (net.Conn, error) { return net.Dial("tcp", up.Addr().String()) }, limits{maxConns: 2, log: funcr.New(func(_, _ string) {}, funcr.Options{})})
	defer s.close()
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		pingConn(t, c)
		held = append(held, c)
	}
	extra, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	closedByServer(t, extra)
	pingConn(t, held[0])
	pingConn(t, held[1])
}

// A panic in a connection's handler is logged with its stack, and the
// server goes on accepting.
func TestPanicIsLogged(t *testing.T) {
	var mu sync.Mutex
	var logged []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		logged = append(logged, args)
		mu.Unlock()
	}, funcr.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newSerializer(ln, func() (net.Conn, error) { panic("dial exploded") }, limits{maxConns: 4, log: log})
	defer s.close()
	for range 2 { // the second connection shows the server survived the first
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		closedByServer(t, c)
		c.Close()
	}
	s.close() // waits for the handlers, so their logs are in
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, l := range logged {
		if strings.Contains(l, "panicked") && strings.Contains(l, "dial exploded") && strings.Contains(l, "stack") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("panics logged %d times, want 2: %q", n, logged)
	}
}
