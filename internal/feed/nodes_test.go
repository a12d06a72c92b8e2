package feed

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/feed/feedtest"
)

func TestParseETag(t *testing.T) {
	tests := map[string]struct {
		in    string
		epoch string
		seq   int64
		ok    bool
	}{
		"plain":         {`"abc-12"`, "abc", 12, true},
		"weak":          {`W/"abc-0"`, "abc", 0, true},
		"dash in epoch": {`"a-b-3"`, "a-b", 3, true},
		"empty":         {``, "", 0, false},
		"unquoted":      {`abc-12`, "", 0, false},
		"no rev":        {`"abc"`, "", 0, false},
		"no epoch":      {`"-3"`, "", 0, false},
		"double dash":   {`"abc--3"`, "abc-", 3, true},
		"not a number":  {`"abc-x"`, "", 0, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, s, ok := parseETag(tc.in)
			if e != tc.epoch || s != tc.seq || ok != tc.ok {
				t.Errorf("parseETag(%q) = %q, %d, %v; want %q, %d, %v", tc.in, e, s, ok, tc.epoch, tc.seq, tc.ok)
			}
		})
	}
}

func FuzzParseETag(f *testing.F) {
	f.Add(`"abc-12"`)
	f.Add(`W/"x-0"`)
	f.Fuzz(func(t *testing.T, s string) {
		epoch, seq, ok := parseETag(s)
		if !ok {
			return
		}
		if seq < 0 || epoch == "" {
			t.Fatalf("parseETag(%q) = %q, %d", s, epoch, seq)
		}
		if e2, s2, ok2 := parseETag(etag(epoch, seq)); !ok2 || e2 != epoch || s2 != seq {
			t.Fatalf("round trip of %q: %q %d %v", s, e2, s2, ok2)
		}
	})
}

func TestNodeTableBounded(t *testing.T) {
	fc := clocktesting.NewFakeClock(t0)
	tab := newNodeTable(time.Minute, 3)
	tab.publish(1, 10, fc.Now())
	for i := range 5 {
		fc.Step(time.Second)
		tab.seen(fmt.Sprintf("n%d", i), `"e-1"`, fc.Now())
	}
	c := tab.snapshot("e", fc.Now())
	if c.Total != 3 || c.Nodes[0].Name != "n2" || c.Nodes[2].Name != "n4" {
		t.Errorf("table = %+v, want the 3 most recent nodes", c.Nodes)
	}
	// A node that applied another epoch's state (a restarted controller)
	// is not known to be current.
	tab.seen("n4", `"old-1"`, fc.Now())
	if c := tab.snapshot("e", fc.Now()); c.AtRev != 2 || c.Laggards()[0].Name != "n4" || c.Laggards()[0].Rev != -1 {
		t.Errorf("after an old epoch: %+v", c)
	}
	for i := range maxHistory + 10 {
		tab.publish(int64(i+2), int64(i+11), fc.Now())
	}
	if n := len(tab.history); n != maxHistory {
		t.Errorf("history holds %d revs, want %d", n, maxHistory)
	}
	if c := tab.snapshot("e", fc.Now()); c.Nodes[0].Rev != -1 || c.Nodes[0].Behind != c.Rev {
		t.Errorf("node behind the remembered history: %+v", c.Nodes[0])
	}
}

func TestNodeHeaderChecked(t *testing.T) {
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1")
	h := NewHandler(st, Options{})
	if err := h.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		node string
		want int
	}{
		"hostname":   {"ip-10-0-1-1.eu-west-1.compute.internal", http.StatusOK},
		"anonymous":  {"", http.StatusOK},
		"space":      {"a b", http.StatusBadRequest},
		"too long":   {string(make([]byte, 300)), http.StatusBadRequest},
		"markup":     {"<script>", http.StatusBadRequest},
		"underscore": {"node_1", http.StatusOK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, Path, nil)
			if tc.node != "" {
				req.Header.Set(NodeHeader, tc.node)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Errorf("status = %d, want %d", rec.Code, tc.want)
			}
		})
	}
	if c := h.Convergence(); c.Total != 2 {
		t.Errorf("nodes = %+v, want the two valid named ones", c.Nodes)
	}
}
