package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// Three nodes follow the feed; one has not applied the latest change.
func TestGetNodes(t *testing.T) {
	ctx := context.Background()
	store := ledgertest.Open(t, ledger.Options{Database: ledgertest.Database(t)})
	claim(t, store, "web", naming.Iterative, testInstances("i-0a", "10.0.1.", 2))
	h := feed.NewHandler(store, feed.Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	var clients []*feed.Client
	for _, name := range []string{"node-a", "node-b", "node-c"} {
		c, err := feed.NewClient(srv.URL, srv.Client(), 0)
		if err != nil {
			t.Fatal(err)
		}
		c.SetNode(name)
		if _, err := c.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		c.MarkApplied()
		clients = append(clients, c)
	}
	claim(t, store, "web", naming.Iterative, testInstances("i-0a", "10.0.1.", 3))
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		if _, err := c.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			c.MarkApplied()
		}
		if _, err := c.Poll(ctx); err != nil { // reports what it applied
			t.Fatal(err)
		}
	}

	out, _, err := runCmd(t, "get", "nodes", "--feed", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("get nodes:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "2 of 3 hosts at rev ") ||
		!strings.HasPrefix(lines[2], "NODE") || !strings.HasPrefix(lines[3], "node-c ") {
		t.Fatalf("get nodes:\n%s", out)
	}
	out, _, err = runCmd(t, "get", "nodes", "--feed", srv.URL, "-o", "name")
	if err != nil || out != "node/node-c\n" {
		t.Errorf("-o name = %q, %v; want the laggard", out, err)
	}
	out, _, err = runCmd(t, "get", "nodes", "node-a", "--feed", srv.URL, "-o", "json")
	var c feed.Convergence
	if err != nil || json.Unmarshal([]byte(out), &c) != nil || len(c.Nodes) != 1 || c.Nodes[0].Name != "node-a" || !c.Nodes[0].Current() {
		t.Errorf("-o json node-a = %s, %v", out, err)
	}
	if _, _, err := runCmd(t, "get", "nodes", "node-x", "--feed", srv.URL); err == nil || !strings.Contains(err.Error(), `node "node-x" not found`) {
		t.Errorf("unknown node: err = %v", err)
	}
	t.Setenv("AEROSTAT_FEED", "")
	if _, _, err := runCmd(t, "get", "nodes"); err == nil || !strings.Contains(err.Error(), "--feed") {
		t.Errorf("without --feed: err = %v", err)
	}
}
