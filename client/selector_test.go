package client_test

import (
	"strings"
	"testing"

	"github.com/aerostat-io/aerostat/client"
)

func TestParseSelector(t *testing.T) {
	tests := map[string]struct {
		in string
		// want is the parsed selector in apimachinery's canonical form;
		// service is the one service read by index ("" for all).
		want, service string
		wantErr       string
	}{
		"empty":        {in: "", want: ""},
		"service":      {in: "service=web", want: "service=web", service: "web"},
		"double eq":    {in: "service==web", want: "service==web", service: "web"},
		"several":      {in: " service=db , state=bound,role=slave", want: "role=slave,service=db,state=bound", service: "db"},
		"1.x type":     {in: "service_type=masterful", want: "service_type=masterful"},
		"2.x type":     {in: "service_type=Masterful", want: "service_type=masterful"},
		"not":          {in: "state!=free", want: "state!=free"},
		"set":          {in: "service in (web,db)", want: "service in (db,web)"},
		"notin":        {in: "state notin (free,pending)", want: "state notin (free,pending)"},
		"exists":       {in: "role", want: "role"},
		"not exists":   {in: "!role", want: "!role"},
		"bad key":      {in: "hostname=web-0", wantErr: `key "hostname": want one of service, service_type, state, role`},
		"bad syntax":   {in: "service=web=x", wantErr: "found '='"},
		"no key":       {in: "=web", wantErr: "expected: !, identifier"},
		"bad state":    {in: "state=gone", wantErr: `state "gone"`},
		"bad state in": {in: "state in (bound,gone)", wantErr: `state "gone"`},
		"bad type":     {in: "service_type=round-robin", wantErr: `"round-robin"`},
		"bad value":    {in: "service=web/0", wantErr: "web/0"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := client.ParseSelector(tt.in)
			if tt.wantErr != "" {
				if err == nil || !contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Labels.String() != tt.want || got.Service != tt.service {
				t.Errorf("got %q service %q, want %q service %q", got.Labels, got.Service, tt.want, tt.service)
			}
		})
	}
}

func TestParseServiceSelector(t *testing.T) {
	web := client.Service{Service: "web", ServiceType: "iterative"}
	db := client.Service{Service: "db", ServiceType: "masterful"}
	tests := map[string]struct {
		in      string
		web, db bool
		wantErr string
	}{
		"all":      {in: "", web: true, db: true},
		"service":  {in: "service=web", web: true},
		"type":     {in: "service_type=Masterful", db: true},
		"set":      {in: "service in (db,cache)", db: true},
		"no state": {in: "state=bound", wantErr: `key "state": want one of service, service_type`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			sel, err := client.ParseServiceSelector(tt.in)
			if tt.wantErr != "" {
				if err == nil || !contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := sel.Matches(client.ServiceLabels(web)); got != tt.web {
				t.Errorf("web: %v, want %v", got, tt.web)
			}
			if got := sel.Matches(client.ServiceLabels(db)); got != tt.db {
				t.Errorf("db: %v, want %v", got, tt.db)
			}
		})
	}
}

func TestSelectorMatches(t *testing.T) {
	web0 := client.Name{Hostname: "web-0", Service: "web", ServiceType: "iterative", State: client.Bound}
	dbm := client.Name{Hostname: "db-master", Service: "db", ServiceType: "masterful", State: client.Free, Role: "master"}
	tests := map[string]struct {
		sel       string
		web0, dbm bool
	}{
		"all":        {"", true, true},
		"service":    {"service=web", true, false},
		"not free":   {"state!=free", true, false},
		"role":       {"role=master", false, true},
		"no match":   {"service=web,role=master", false, false},
		"type":       {"service_type=iterative", true, false},
		"in":         {"service in (web,db)", true, true},
		"notin":      {"service notin (web)", false, true},
		"has role":   {"role", false, true},
		"no role":    {"!role", true, false},
		"role!=...":  {"role!=slave", true, true},
		"contradict": {"service=web,service=db", false, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			sel, err := client.ParseSelector(tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			if got := sel.Matches(web0); got != tt.web0 {
				t.Errorf("web-0: %v, want %v", got, tt.web0)
			}
			if got := sel.Matches(dbm); got != tt.dbm {
				t.Errorf("db-master: %v, want %v", got, tt.dbm)
			}
		})
	}
	if !(client.Selector{}).Matches(web0) {
		t.Error("the zero Selector must match every name")
	}
}

func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"", "service=web", "state!=free,role=slave", "service_type=Masterful", "a=b=c", ",,", "=x", "service==", "service in (a,b)", "!role", "state notin (free)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := client.ParseSelector(s)
		if err != nil {
			return
		}
		// A selector that parsed reparses to itself (its canonical form
		// is stable), and one reading a single service by index selects
		// no name of another service.
		again, err := client.ParseSelector(sel.Labels.String())
		if err != nil || again.Labels.String() != sel.Labels.String() {
			t.Errorf("%q: canonical %q reparses to %v, %v", s, sel.Labels, again.Labels, err)
		}
		if sel.Service != "" && sel.Matches(client.Name{Service: sel.Service + "x", State: client.Bound}) {
			t.Errorf("%q: service %q selects another service", s, sel.Service)
		}
	})
}

func TestServerURI(t *testing.T) {
	tests := map[string]struct {
		in, want, wantErr string
	}{
		"1.x host":  {in: "admin-master", want: "mongodb://admin-master:27017/"},
		"host:port": {in: "localhost:27018", want: "mongodb://localhost:27018/"},
		"ipv6":      {in: "::1", want: "mongodb://[::1]:27017/"},
		"uri":       {in: "mongodb://a,b/?replicaSet=rs0", want: "mongodb://a,b/?replicaSet=rs0"},
		"srv":       {in: "mongodb+srv://cluster.example.com/", want: "mongodb+srv://cluster.example.com/"},
		"empty":     {in: "", wantErr: "empty"},
		"http":      {in: "http://admin-master", wantErr: `"http://admin-master"`},
		"junk":      {in: "user@host", wantErr: `"user@host"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := client.ServerURI(tt.in)
			if tt.wantErr != "" {
				if err == nil || !contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func FuzzServerURI(f *testing.F) {
	for _, s := range []string{"admin-master", "h:1", "mongodb://x/", "::1", "a b", "ftp://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		uri, err := client.ServerURI(s)
		if err == nil && !(len(uri) > 10 && (uri[:10] == "mongodb://" || uri[:10] == "mongodb+sr")) {
			t.Errorf("%q: got %q, not a mongodb URI", s, uri)
		}
	})
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
