package table_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/client"
	"github.com/aerostat-io/aerostat/internal/table"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func ago(d time.Duration) *time.Time {
	t := now.Add(-d)
	return &t
}

// fixture is a small ledger: an iterative service with a gap and a
// two-digit number (to check numeric order), a masterful one with aliases,
// and a record 1.x wrote (no times, no rev).
func fixture() []client.Name {
	names := []client.Name{
		{Hostname: "web-0", IP: "10.0.1.1", Service: "web", ServiceType: "iterative", InstanceID: "i-0a1b2c3d4e5f60001", Aliases: []string{}, State: client.Bound, Rev: 3, UpdatedAt: ago(3 * time.Hour), ClaimedAt: ago(3 * time.Hour)},
		{Hostname: "web-1", Service: "web", ServiceType: "iterative", Ordinal: 1, Aliases: []string{}, State: client.Free, Rev: 9, UpdatedAt: ago(45 * time.Second)},
		{Hostname: "web-10", IP: "10.0.1.11", Service: "web", ServiceType: "iterative", InstanceID: "i-0a1b2c3d4e5f60011", Ordinal: 10, Aliases: []string{}, State: client.Bound, Rev: 7, UpdatedAt: ago(200 * time.Second), ClaimedAt: ago(200 * time.Second)},
		{Hostname: "web-2", IP: "10.0.1.3", Service: "web", ServiceType: "iterative", InstanceID: "i-0a1b2c3d4e5f60003", Ordinal: 2, Aliases: []string{}, State: client.Bound, Rev: 4, UpdatedAt: ago(5 * 24 * time.Hour), ClaimedAt: ago(5 * 24 * time.Hour)},
		{Hostname: "db-slave-1", IP: "10.0.2.2", Service: "db", ServiceType: "masterful", InstanceID: "i-0d1b2c3d4e5f60002", Ordinal: 1, Role: "slave", Aliases: []string{}, State: client.Bound, Rev: 5, UpdatedAt: ago(2 * time.Hour), ClaimedAt: ago(2 * time.Hour)},
		{Hostname: "db-master", IP: "10.0.2.1", Service: "db", ServiceType: "masterful", InstanceID: "i-0d1b2c3d4e5f60001", Role: "master", Aliases: []string{"db", "db.internal"}, State: client.Bound, Rev: 6, UpdatedAt: ago(2 * time.Hour), ClaimedAt: ago(2 * time.Hour)},
		{Hostname: "cache-0", IP: "10.0.3.1", Service: "cache", ServiceType: "iterative", InstanceID: "i-legacy", Aliases: []string{}, State: client.Bound},
	}
	client.SortNames(names)
	return names
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestNames(t *testing.T) {
	tests := map[string]struct {
		format table.Format
		single bool
		names  []client.Name
	}{
		"names":        {format: table.Table, names: fixture()},
		"names-wide":   {format: table.Wide, names: fixture()},
		"names-json":   {format: table.JSON, names: fixture()},
		"names-yaml":   {format: table.YAML, names: fixture()[:2]},
		"names-name":   {format: table.Name, names: fixture()},
		"name-single":  {format: table.JSON, names: fixture()[:1], single: true},
		"names-empty":  {format: table.Table},
		"names-emptyj": {format: table.JSON},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := table.Names(&b, tt.names, tt.format, tt.single, now); err != nil {
				t.Fatal(err)
			}
			golden(t, name, b.Bytes())
		})
	}
}

func TestServices(t *testing.T) {
	svcs := client.Summarize(fixture())
	cluster := []client.Service{
		{Service: "db", ServiceType: "masterful", Bound: 2, Master: "i-0d1b2c3d4e5f60001", Ready: "True", Since: ago(26 * time.Hour)},
		{Service: "web", ServiceType: "iterative", Bound: 0, Gaps: 4, Ready: "False", Since: ago(90 * time.Second)},
	}
	tests := map[string]struct {
		format table.Format
		svcs   []client.Service
	}{
		"services":         {format: table.Table, svcs: svcs},
		"services-json":    {format: table.JSON, svcs: svcs},
		"services-name":    {format: table.Name, svcs: svcs},
		"services-cluster": {format: table.Table, svcs: cluster},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := table.Services(&b, tt.svcs, tt.format, now); err != nil {
				t.Fatal(err)
			}
			golden(t, name, b.Bytes())
		})
	}
}

// Scripts rely on these field names (the 1.x document's, then Aerostat 2's).
func TestJSONFieldNames(t *testing.T) {
	var b bytes.Buffer
	if err := table.Names(&b, fixture(), table.JSON, false, now); err != nil {
		t.Fatal(err)
	}
	var docs []map[string]json.RawMessage
	if err := json.Unmarshal(b.Bytes(), &docs); err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		for _, k := range []string{"hostname", "ip", "service", "service_type", "instance_id", "aliases", "state", "ordinal", "role", "updated_at"} {
			if _, ok := d[k]; !ok {
				t.Errorf("%s: no field %q", d["hostname"], k)
			}
		}
	}
}

func TestStream(t *testing.T) {
	var b bytes.Buffer
	s := table.NewStream(&b, table.Table, func() time.Time { return now })
	names := fixture()
	first := []client.Event{{Type: client.Added, Name: names[3]}, {Type: client.Added, Name: names[4]}}
	if err := s.Print(first); err != nil {
		t.Fatal(err)
	}
	changed := names[5]
	changed.State, changed.InstanceID, changed.IP = client.Free, "", ""
	if err := s.Print([]client.Event{{Type: client.Modified, Name: changed}, {Type: client.Added, Name: names[0]}}); err != nil {
		t.Fatal(err)
	}
	golden(t, "stream", b.Bytes())

	b.Reset()
	s = table.NewStream(&b, table.JSON, func() time.Time { return now })
	if err := s.Print(first); err != nil {
		t.Fatal(err)
	}
	golden(t, "stream-json", b.Bytes())
}

// Age is kubectl's AGE column (duration.HumanDuration), exactly.
func TestAge(t *testing.T) {
	tests := map[string]struct {
		d    time.Duration
		want string
	}{
		"seconds":   {45 * time.Second, "45s"},
		"minutes":   {3 * time.Minute, "3m"},
		"min+sec":   {200 * time.Second, "3m20s"},
		"2 hours":   {2 * time.Hour, "120m"}, // kubectl shows minutes up to 3h
		"hours":     {5 * time.Hour, "5h"},
		"days":      {5 * 24 * time.Hour, "5d"},
		"future":    {-time.Minute, "<invalid>"},
		"years":     {3 * 365 * 24 * time.Hour, "3y"},
		"just born": {0, "0s"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := table.Age(now.Add(-tt.d), now); got != tt.want {
				t.Errorf("Age(%v ago) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
	if got := table.Age(time.Time{}, now); got != "<unknown>" {
		t.Errorf("Age(zero) = %q, want <unknown>", got)
	}
}

func TestParseFormat(t *testing.T) {
	for _, ok := range []string{"", "wide", "json", "yaml", "name"} {
		if _, err := table.ParseFormat(ok); err != nil {
			t.Errorf("ParseFormat(%q): %v", ok, err)
		}
	}
	if _, err := table.ParseFormat("jsonpath"); err == nil {
		t.Error(`ParseFormat("jsonpath") = nil error`)
	}
}
