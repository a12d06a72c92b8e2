package client_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/aerostat-io/aerostat/client"
)

func TestParseSelector(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    client.Selector
		wantErr string
	}{
		"empty":       {in: "", want: client.Selector{}},
		"service":     {in: "service=web", want: client.Selector{Service: "web"}},
		"double eq":   {in: "service==web", want: client.Selector{Service: "web"}},
		"several":     {in: " service=db , state=bound,role=slave", want: client.Selector{Service: "db", State: client.Bound, Role: "slave"}},
		"1.x type":    {in: "service_type=masterful", want: client.Selector{ServiceType: "masterful"}},
		"2.x type":    {in: "service_type=Masterful", want: client.Selector{ServiceType: "masterful"}},
		"not":         {in: "state!=free", want: client.Selector{Not: map[string]string{"state": "free"}}},
		"bad key":     {in: "hostname=web-0", wantErr: `key "hostname"`},
		"no value op": {in: "service", wantErr: `term "service"`},
		"bad state":   {in: "state=gone", wantErr: `state "gone"`},
		"bad type":    {in: "service_type=round-robin", wantErr: `"round-robin"`},
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
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
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
		"all":      {"", true, true},
		"service":  {"service=web", true, false},
		"not free": {"state!=free", true, false},
		"role":     {"role=master", false, true},
		"no match": {"service=web,role=master", false, false},
		"type":     {"service_type=iterative", true, false},
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
}

func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"", "service=web", "state!=free,role=slave", "service_type=Masterful", "a=b=c", ",,", "=x", "service=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := client.ParseSelector(s)
		if err != nil {
			return
		}
		// A selector that parsed must be usable and must select a name
		// that has exactly its values.
		n := client.Name{Service: sel.Service, ServiceType: sel.ServiceType, State: sel.State, Role: sel.Role}
		if len(sel.Not) == 0 && !sel.Matches(n) {
			t.Errorf("%q: parsed %+v does not match %+v", s, sel, n)
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
