package embedded

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// startAndConnect starts a store with o (in a fresh temp dir when
// o.DataDir is empty) and connects the real driver to it; configure, if
// given, adjusts the client options. The client is disconnected and the
// store closed when the test ends; both may be closed earlier (Close is
// idempotent).
func startAndConnect(t testing.TB, o Options, configure ...func(*options.ClientOptions)) (*Server, *mongo.Client) {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	s, err := Start(context.Background(), o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	co := options.Client().ApplyURI(s.URI())
	for _, f := range configure {
		f(co)
	}
	c, err := mongo.Connect(co)
	if err != nil {
		t.Fatalf("connecting to %s: %v", s.URI(), err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return s, c
}
