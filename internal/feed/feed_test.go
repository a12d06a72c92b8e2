package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/fakeclock"
	"github.com/aerostat-io/aerostat/internal/feed/feedtest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func hostnames(recs []naming.Record, boundOnly bool) string {
	var out []string
	for _, r := range recs {
		if boundOnly && r.Free() {
			continue
		}
		out = append(out, r.Hostname)
	}
	return strings.Join(out, ",")
}

func newFeed(t *testing.T, st *feedtest.MemStore, opts Options) (*Handler, *fakeclock.Clock, *httptest.Server) {
	t.Helper()
	fc := fakeclock.New(t0)
	opts.Clock = fc
	h := NewHandler(st, opts)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, fc, srv
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, Response) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body Response
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
	}
	return resp, body
}

func names(es []Entry) string {
	var out []string
	for _, e := range es {
		s := e.Hostname
		if e.Released {
			s += "(released)"
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

func TestHandlerFullDeltaETag(t *testing.T) {
	ctx := context.Background()
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1", "www")
	st.Bind("web-1", "web", "i-1", "10.0.0.2")
	st.Put(naming.Record{Hostname: "web-2", Service: "web"}) // a gap: served as released
	h, fc, srv := newFeed(t, st, Options{})

	if resp, _ := get(t, srv.URL+Path); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("before the first sync: %d, want 503", resp.StatusCode)
	}
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	resp, full := get(t, srv.URL+Path)
	if resp.StatusCode != 200 || !full.Full || names(full.Entries) != "web-0,web-1,web-2(released)" {
		t.Fatalf("full: %d %+v", resp.StatusCode, full)
	}
	if full.Entries[0].IP != "10.0.0.1" || full.Entries[0].Aliases[0] != "www" || full.Entries[0].Service != "web" {
		t.Errorf("entry = %+v", full.Entries[0])
	}
	tag := resp.Header.Get("ETag")
	if resp, _ := get(t, srv.URL+Path, "If-None-Match", tag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match current: %d, want 304", resp.StatusCode)
	}

	st.Release("web-1")
	st.Bind("web-3", "web", "i-3", "10.0.0.4")
	fc.Step(time.Second)
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	_, delta := get(t, fmt.Sprintf("%s%s?since=%d&epoch=%s", srv.URL, Path, full.Rev, full.Epoch))
	if delta.Full || names(delta.Entries) != "web-1(released),web-3" {
		t.Errorf("delta = %+v", delta)
	}
	_, other := get(t, fmt.Sprintf("%s%s?since=%d&epoch=old", srv.URL, Path, full.Rev))
	if !other.Full || names(other.Entries) != "web-0,web-1(released),web-2(released),web-3" {
		t.Errorf("other epoch = %+v, want a full response", other)
	}
}

func TestHandlerLongPoll(t *testing.T) {
	ctx := context.Background()
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1")
	h, fc, srv := newFeed(t, st, Options{})
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	_, full := get(t, srv.URL+Path)
	url := fmt.Sprintf("%s%s?since=%d&epoch=%s&wait=30s", srv.URL, Path, full.Rev, full.Epoch)

	// A change wakes the waiting request.
	done := make(chan Response)
	go func() { _, r := get(t, url); done <- r }()
	fc.WaitArmed(t, 30*time.Second) // the request's wait= timer
	st.Bind("web-1", "web", "i-1", "10.0.0.2")
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-done; names(r.Entries) != "web-1" || r.Rev != full.Rev+1 {
		t.Errorf("woken response = %+v", r)
	}

	// No change: the request answers at the timeout with an empty delta.
	url = fmt.Sprintf("%s%s?since=%d&epoch=%s&wait=30s", srv.URL, Path, full.Rev+1, full.Epoch)
	go func() { _, r := get(t, url); done <- r }()
	fc.WaitArmed(t, 30*time.Second)
	fc.Step(30 * time.Second)
	if r := <-done; len(r.Entries) != 0 || r.Full || r.Rev != full.Rev+1 {
		t.Errorf("timed-out response = %+v", r)
	}
}

func TestHandlerLimits(t *testing.T) {
	st := feedtest.New()
	h, _, srv := newFeed(t, st, Options{MaxInFlight: 1})
	if err := h.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		method, path string
		want         int
	}{
		"post":          {http.MethodPost, Path, http.StatusMethodNotAllowed},
		"delete":        {http.MethodDelete, Path, http.StatusMethodNotAllowed},
		"other path":    {http.MethodGet, "/v1/records", http.StatusNotFound},
		"bad since":     {http.MethodGet, Path + "?since=abc", http.StatusBadRequest},
		"bad wait":      {http.MethodGet, Path + "?wait=forever", http.StatusBadRequest},
		"unknown param": {http.MethodGet, Path + "?service=web", http.StatusBadRequest},
		"long query":    {http.MethodGet, Path + "?since=" + strings.Repeat("1", 300), http.StatusRequestURITooLong},
		"head":          {http.MethodHead, Path, http.StatusOK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	t.Run("in-flight cap", func(t *testing.T) {
		h.slots <- struct{}{} // one request holds the only slot
		defer func() { <-h.slots }()
		resp, _ := get(t, srv.URL+Path)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", resp.StatusCode)
		}
	})
	s := NewServer(":0", h, 0)
	if s.MaxHeaderBytes > 8<<10 || s.ReadHeaderTimeout == 0 || s.WriteTimeout == 0 {
		t.Errorf("server limits not set: %+v", s)
	}
}

func TestClientFollowsFeed(t *testing.T) {
	ctx := context.Background()
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1", "www")
	st.Bind("web-1", "web", "i-1", "10.0.0.2")
	h, _, srv := newFeed(t, st, Options{})
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(srv.URL, srv.Client(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := c.Poll(ctx); err != nil || !changed || hostnames(c.Records(), true) != "web-0,web-1" {
		t.Fatalf("first poll: %v %v %v", changed, err, c.Records())
	}
	if changed, err := c.Poll(ctx); err != nil || changed {
		t.Fatalf("idle poll: changed=%v err=%v", changed, err)
	}
	st.Release("web-0")
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if changed, err := c.Poll(ctx); err != nil || !changed || hostnames(c.Records(), true) != "web-1" || !c.Released("web-0") {
		t.Fatalf("after release: %v %v %v", changed, err, c.Records())
	}
	srv.Close()
	if _, err := c.Poll(ctx); err == nil {
		t.Fatal("poll of a closed server succeeded")
	}
	if hostnames(c.Records(), true) != "web-1" {
		t.Error("client lost its names on error")
	}
	if _, err := NewClient("ftp://x", nil, 0); err == nil {
		t.Error("NewClient accepted ftp://")
	}
}
