package fake

import (
	"context"
	"net/url"
	"regexp"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/naming"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func TestLaunch(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	f := NewFleet(clk)
	a := f.Launch(300, map[string]string{"aerostat:service": "web"})
	clk.Step(time.Minute)
	b := f.Launch(1, nil)
	idRe := regexp.MustCompile(`^i-[0-9a-f]{17}$`)
	ipRe := regexp.MustCompile(`^10\.\d+\.\d+\.\d+$`)
	ids, ips := map[string]bool{}, map[string]bool{}
	for _, in := range f.Instances() {
		if !idRe.MatchString(in.ID) || !ipRe.MatchString(in.PrivateIP) {
			t.Errorf("instance %s has IP %s", in.ID, in.PrivateIP)
		}
		if ids[in.ID] || ips[in.PrivateIP] {
			t.Errorf("duplicate id %s or IP %s", in.ID, in.PrivateIP)
		}
		ids[in.ID], ips[in.PrivateIP] = true, true
		if in.State != naming.StateRunning {
			t.Errorf("launched instance is %s", in.State)
		}
	}
	if len(ids) != 301 {
		t.Fatalf("%d instances, want 301", len(ids))
	}
	first, _ := f.Instance(a[0])
	last, _ := f.Instance(b[0])
	if !first.LaunchTime.Equal(t0) || !last.LaunchTime.Equal(t0.Add(time.Minute)) {
		t.Errorf("launch times %v, %v", first.LaunchTime, last.LaunchTime)
	}
	// Copies: changing a result does not change the fleet.
	first.Tags["aerostat:service"] = "db"
	if again, _ := f.Instance(a[0]); again.Tags["aerostat:service"] != "web" {
		t.Error("Instance returned a shared tag map")
	}
}

func TestLifecycle(t *testing.T) {
	f := NewFleet(clocktesting.NewFakeClock(t0))
	ids := f.Launch(4, nil)
	steps := map[string]struct {
		do   func() error
		id   string
		want naming.InstanceState
	}{
		"stop":      {func() error { return f.Stop(ids[0]) }, ids[0], naming.StateStopped},
		"terminate": {func() error { return f.Terminate(ids[1]) }, ids[1], naming.StateTerminated},
		"set state": {func() error { return f.SetState(ids[2], naming.StateShuttingDown) }, ids[2], naming.StateShuttingDown},
	}
	for name, s := range steps {
		t.Run(name, func(t *testing.T) {
			if err := s.do(); err != nil {
				t.Fatal(err)
			}
			if in, _ := f.Instance(s.id); in.State != s.want {
				t.Errorf("state = %s, want %s", in.State, s.want)
			}
		})
	}
	if err := f.Start(ids[0]); err != nil {
		t.Fatal(err)
	}
	if in, _ := f.Instance(ids[0]); in.State != naming.StateRunning {
		t.Errorf("started instance is %s", in.State)
	}
	if err := f.SetState(ids[0], "exploded"); err == nil {
		t.Error("SetState accepted an unknown state")
	}
	if err := f.Terminate(ids[3], "i-00000000000000bad"); err == nil {
		t.Error("Terminate accepted an unknown id")
	}
	if in, _ := f.Instance(ids[3]); in.State != naming.StateRunning {
		t.Error("a failed Terminate changed an instance")
	}
	f.Remove(ids[1], "i-00000000000000bad")
	if _, ok := f.Instance(ids[1]); ok || f.Len() != 3 {
		t.Errorf("removed instance still there (len %d)", f.Len())
	}
}

func TestFleetList(t *testing.T) {
	f := NewFleet(clocktesting.NewFakeClock(t0))
	f.Launch(2500, map[string]string{"aerostat:service": "web"})
	f.Launch(10, map[string]string{"aerostat:service": "db"})
	tests := map[string]struct {
		inject    func()
		filters   []cloud.Filter
		wantN     int
		wantErr   bool
		throttled bool
		calls     int
	}{
		"all":          {func() {}, nil, 2510, false, false, 3},
		"filtered":     {func() {}, []cloud.Filter{{Name: "tag:aerostat:service", Values: []string{"db"}}}, 10, false, false, 1},
		"throttled":    {func() { f.ThrottleNext(1) }, nil, 0, true, true, 1},
		"page 2 fails": {func() { f.FailOnPage(2) }, nil, 1000, true, false, 2},
		"storm page 3": {func() { f.ThrottleOnPage(3) }, nil, 2000, true, true, 3},
		"not found":    {func() { f.NotFoundNext(1) }, nil, 0, true, false, 1},
		"empty":        {func() { f.EmptyListing(true) }, nil, 0, false, false, 1},
		"bad filter":   {func() {}, []cloud.Filter{{Name: "flavour", Values: []string{"x"}}}, 0, true, false, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f.Reset()
			tc.inject()
			var got []cloud.APICall
			f.SetAPICallHook(func(c cloud.APICall) { got = append(got, c) })
			out, err := f.List(context.Background(), tc.filters...)
			if (err != nil) != tc.wantErr || cloud.IsThrottled(err) != tc.throttled {
				t.Errorf("err = %v, want error %v throttled %v", err, tc.wantErr, tc.throttled)
			}
			if len(out) != tc.wantN || f.Calls() != tc.calls || len(got) != tc.calls {
				t.Errorf("got %d instances in %d calls (%d reported), want %d in %d", len(out), f.Calls(), len(got), tc.wantN, tc.calls)
			}
		})
	}
}

func TestFleetConcurrent(t *testing.T) {
	f := NewFleet(clocktesting.NewFakeClock(t0))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				ids := f.Launch(2, map[string]string{"k": "v"})
				_ = f.Terminate(ids[0])
				if _, err := f.List(context.Background(), cloud.Filter{Name: "tag-key", Values: []string{"k"}}); err != nil {
					t.Error(err)
				}
				f.Remove(ids[0])
			}
		})
	}
	wg.Wait()
	if f.Len() != 8*50 {
		t.Errorf("Len = %d, want %d", f.Len(), 8*50)
	}
}

func TestParseFilters(t *testing.T) {
	form := url.Values{
		"Filter.2.Name":    {"instance-state-name"},
		"Filter.2.Value.1": {"running"},
		"Filter.2.Value.2": {"pending"},
		"Filter.1.Name":    {"tag:aerostat:service"},
		"Filter.1.Value.1": {"web"},
		"Filter.1.Value.3": {"skipped after a gap"},
	}
	got := parseFilters(form)
	if len(got) != 2 || got[0].Name != "tag:aerostat:service" || len(got[0].Values) != 1 ||
		got[1].Name != "instance-state-name" || len(got[1].Values) != 2 {
		t.Errorf("parseFilters = %+v", got)
	}
}

func FuzzParseFilters(f *testing.F) {
	f.Add("Filter.1.Name=tag%3Aa&Filter.1.Value.1=b&MaxResults=5&NextToken=b2Zmc2V0OjEw")
	f.Add("Filter.x.Name=&Filter.1.Value.1=")
	fleet := NewFleet(clocktesting.NewFakeClock(t0))
	fleet.Launch(3, map[string]string{"a": "b"})
	f.Fuzz(func(t *testing.T, query string) {
		form, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		filters := parseFilters(form)
		if checkFilters(filters) == nil {
			for _, in := range fleet.Instances() {
				matches(&in, filters)
			}
		}
		if off, err := decodeToken(form.Get("NextToken")); err == nil && off < 0 {
			t.Errorf("negative offset %d", off)
		}
		_ = pageSizeOf(form)
	})
}

func TestTokenRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 1000, 123456} {
		if got, err := decodeToken(encodeToken(n)); err != nil || got != n {
			t.Errorf("decodeToken(encodeToken(%d)) = %d, %v", n, got, err)
		}
	}
	for _, bad := range []string{"!!", "b2Zmc2V0Oi0x", "eA"} {
		if _, err := decodeToken(bad); err == nil {
			t.Errorf("decodeToken(%q) accepted", bad)
		}
	}
}
