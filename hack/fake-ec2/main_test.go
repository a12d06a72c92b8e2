package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/naming"
)

func TestParseFleet(t *testing.T) {
	tests := map[string]struct {
		spec    string
		want    []group
		wantErr string
	}{
		"one service":    {spec: "web=20", want: []group{{service: "web", n: 20}}},
		"with a scheme":  {spec: "web=2, db:masterful=3", want: []group{{service: "web", n: 2}, {service: "db", scheme: "masterful", n: 3}}},
		"empty":          {spec: "", want: nil},
		"no count":       {spec: "web", wantErr: `"web"`},
		"negative":       {spec: "web=-1", wantErr: `"web=-1"`},
		"bad service":    {spec: "Web_1=2", wantErr: "-fleet service"},
		"unknown scheme": {spec: "db:leader=1", wantErr: `"db:leader=1"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseFleet(tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseFleet(%q) error = %v, want one naming %s", tc.spec, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("parseFleet(%q) = %v, %v; want %v", tc.spec, got, err, tc.want)
			}
		})
	}
}

// TestControl changes the fleet and the faults over the control endpoints.
func TestControl(t *testing.T) {
	fleet := fake.NewFleet(clocktesting.NewFakeClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)))
	fleet.Launch(3, group{service: "web"}.tags())
	api := fake.NewAPI(fleet)
	srv := httptest.NewServer(control{fleet: fleet, api: api})
	defer srv.Close()
	post := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/fake/launch?service=db&scheme=masterful&n=2"); code != 200 || strings.Count(body, "i-") != 2 {
		t.Fatalf("launch: %d %q", code, body)
	}
	if code, body := post("/fake/terminate?service=web&n=2"); code != 200 || strings.Count(body, "i-") != 2 {
		t.Fatalf("terminate: %d %q", code, body)
	}
	states := map[string]int{}
	for _, in := range fleet.Instances() {
		states[in.Tags[tagService]+"/"+string(in.State)]++
		if in.Tags[tagService] == "db" && in.Tags[tagServiceType] != "masterful" {
			t.Errorf("launched db instance without its service-type tag: %v", in.Tags)
		}
	}
	want := map[string]int{"web/" + string(naming.StateTerminated): 2, "web/" + string(naming.StateRunning): 1, "db/" + string(naming.StateRunning): 2}
	for k, n := range want {
		if states[k] != n {
			t.Errorf("%s: %d instances, want %d (all: %v)", k, states[k], n, states)
		}
	}
	if code, _ := post("/fake/faults?throttle-next=1"); code != 200 {
		t.Fatalf("faults: %d", code)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("Action=DescribeInstances"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	api.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), fake.CodeThrottled) {
		t.Errorf("DescribeInstances after throttle-next=1: %d %s", rec.Code, rec.Body)
	}
	for _, bad := range []string{"/fake/launch?service=web&n=0", "/fake/launch?service=Bad_Name", "/fake/faults?latency=soon"} {
		if code, _ := post(bad); code != http.StatusBadRequest {
			t.Errorf("POST %s: %d, want 400", bad, code)
		}
	}
}
