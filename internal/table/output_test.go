package table_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/client"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/table"
)

func mustFormat(t *testing.T, o string, noHeaders bool) table.Format {
	t.Helper()
	f, err := table.ParseFormat(o)
	if err != nil {
		t.Fatalf("ParseFormat(%q): %v", o, err)
	}
	if noHeaders {
		f = f.WithoutHeaders()
	}
	return f
}

// Every -o the names accept, with and without --no-headers.
func TestNamesOutputs(t *testing.T) {
	names := fixture()[:3] // cache-0, db-master, db-slave-1
	tests := map[string]struct {
		o         string
		noHeaders bool
		single    bool
		want      string
	}{
		"table no headers": {o: "", noHeaders: true, want: "cache-0      cache   bound   i-legacy              10.0.3.1   <unknown>\n" +
			"db-master    db      bound   i-0d1b2c3d4e5f60001   10.0.2.1   120m\n" +
			"db-slave-1   db      bound   i-0d1b2c3d4e5f60002   10.0.2.2   120m\n"},
		"wide no headers": {o: "wide", noHeaders: true, want: "cache-0      cache   iterative   <none>   bound   i-legacy              10.0.3.1   <none>           0   <unknown>\n" +
			"db-master    db      masterful   master   bound   i-0d1b2c3d4e5f60001   10.0.2.1   db,db.internal   6   120m\n" +
			"db-slave-1   db      masterful   slave    bound   i-0d1b2c3d4e5f60002   10.0.2.2   <none>           5   120m\n"},
		"name":                  {o: "name", want: "name/cache-0\nname/db-master\nname/db-slave-1\n"},
		"name no headers":       {o: "name", noHeaders: true, want: "name/cache-0\nname/db-master\nname/db-slave-1\n"},
		"jsonpath list":         {o: "jsonpath={.items[*].hostname}", want: "cache-0 db-master db-slave-1"},
		"jsonpath range":        {o: `jsonpath={range .items[*]}{.hostname}{"\t"}{.ip}{"\n"}{end}`, want: "cache-0\t10.0.3.1\ndb-master\t10.0.2.1\ndb-slave-1\t10.0.2.2\n"},
		"jsonpath filter":       {o: `jsonpath={.items[?(@.role=="master")].hostname}`, want: "db-master"},
		"jsonpath single":       {o: "jsonpath={.instance_id}", single: true, want: "i-legacy"},
		"jsonpath missing":      {o: "jsonpath={.items[*].nosuchfield}", want: ""},
		"custom-columns":        {o: "custom-columns=NAME:.hostname,ALIASES:.aliases[*],ROLE:role", want: "NAME         ALIASES          ROLE\ncache-0      <none>           \ndb-master    db,db.internal   master\ndb-slave-1   <none>           slave\n"},
		"custom-columns bare":   {o: "custom-columns=NAME:.hostname,X:.nosuchfield", noHeaders: true, want: "cache-0      <none>\ndb-master    <none>\ndb-slave-1   <none>\n"},
		"custom-columns braces": {o: "custom-columns=IP:{.ip}", want: "IP\n10.0.3.1\n10.0.2.1\n10.0.2.2\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			in := names
			if tt.single {
				in = names[:1]
			}
			var b bytes.Buffer
			if err := table.Names(&b, in, mustFormat(t, tt.o, tt.noHeaders), tt.single, now); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("-o %q:\ngot:\n%q\nwant:\n%q", tt.o, b.String(), tt.want)
			}
		})
	}
}

func TestServicesOutputs(t *testing.T) {
	svcs := client.Summarize(fixture())
	tests := map[string]struct {
		o         string
		noHeaders bool
		want      string
	}{
		"name":           {o: "name", want: "service/cache\nservice/db\nservice/web\n"},
		"jsonpath":       {o: "jsonpath={.items[*].service}", want: "cache db web"},
		"custom-columns": {o: "custom-columns=SVC:.service,BOUND:.bound", noHeaders: true, want: "cache   1\ndb      2\nweb     3\n"},
		"no headers": {o: "", noHeaders: true, want: "cache   iterative   1   0   <none>                <unknown>\n" +
			"db      masterful   2   0   i-0d1b2c3d4e5f60001   120m\n" + "web     iterative   3   1   <none>                5d\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := table.Services(&b, svcs, mustFormat(t, tt.o, tt.noHeaders), now); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("-o %q:\ngot:\n%q\nwant:\n%q", tt.o, b.String(), tt.want)
			}
		})
	}
}

func TestNodesOutputs(t *testing.T) {
	seen := now.Add(-time.Minute)
	c := feed.Convergence{Rev: 7, Nodes: []feed.NodeState{{Name: "ip-10-0-0-2", Rev: 5, Behind: 2, StaleSince: &seen, LastSeen: seen}, {Name: "ip-10-0-0-1", Rev: 7, LastSeen: seen}}}
	tests := map[string]struct {
		o         string
		noHeaders bool
		want      string
	}{
		"no headers":     {noHeaders: true, want: "ip-10-0-0-2   5   2   60s   60s\nip-10-0-0-1   7   0   -     60s\n"},
		"name":           {o: "name", want: "node/ip-10-0-0-2\n"},
		"jsonpath":       {o: "jsonpath={.nodes[*].name}", want: "ip-10-0-0-2 ip-10-0-0-1"},
		"custom-columns": {o: "custom-columns=NODE:.name,REV:.rev", want: "NODE          REV\nip-10-0-0-2   5\nip-10-0-0-1   7\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := table.Nodes(&b, c, mustFormat(t, tt.o, tt.noHeaders), now); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("-o %q:\ngot:\n%q\nwant:\n%q", tt.o, b.String(), tt.want)
			}
		})
	}
}

// A bad -o is refused before anything is read, with the value in the error.
func TestParseFormatErrors(t *testing.T) {
	tests := map[string]struct {
		o    string
		want string
	}{
		"unknown":              {o: "xml", want: `-o "xml": want one of`},
		"jsonpath no template": {o: "jsonpath", want: "jsonpath needs a template"},
		"jsonpath empty":       {o: "jsonpath=", want: "jsonpath needs a template"},
		"jsonpath unclosed":    {o: "jsonpath={.items[*].hostname", want: `template "{.items[*].hostname"`},
		"jsonpath bad filter":  {o: "jsonpath={.items[?(@.x==)]}", want: `-o "jsonpath={.items[?(@.x==)]}"`},
		"columns empty":        {o: "custom-columns=", want: "custom-columns needs at least one HEADER:.field"},
		"columns no path":      {o: "custom-columns=NAME", want: `column "NAME": want HEADER:.field`},
		"columns no header":    {o: "custom-columns=:.hostname", want: `column ":.hostname": want HEADER:.field`},
		"columns bad path":     {o: "custom-columns=NAME:.items[", want: `column "NAME:.items["`},
		"wide with arg":        {o: "wide=x", want: `-o "wide=x": want one of`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := table.ParseFormat(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseFormat(%q) = %v, want an error containing %q", tt.o, err, tt.want)
			}
		})
	}
}

// A template that parses but cannot run on the data says which, and
// prints nothing of what it had evaluated before.
func TestJSONPathExecuteError(t *testing.T) {
	tests := map[string]struct {
		o    string
		want string
	}{
		"index a string": {o: "jsonpath={.items[*].hostname}{.items[0].hostname[0]}", want: "-o jsonpath: string is not array or slice"},
		"out of bounds":  {o: "jsonpath={.items[0].aliases[7]}", want: "-o jsonpath: array index out of bounds"},
		"bad comparison": {o: `jsonpath={.items[?(@.ordinal>"a")]}`, want: "-o jsonpath: incompatible types for comparison"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			err := table.Names(&b, fixture(), mustFormat(t, tt.o, false), false, now)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
			if b.Len() != 0 {
				t.Errorf("printed %q before failing", b.String())
			}
		})
	}
}

func TestStreamFormats(t *testing.T) {
	names := fixture()
	events := []client.Event{{Type: client.Added, Name: names[0]}, {Type: client.Modified, Name: names[1]}}
	tests := map[string]struct {
		o         string
		noHeaders bool
		want      string
	}{
		"name":           {o: "name", want: "name/cache-0\nname/db-master\nname/cache-0\nname/db-master\n"},
		"jsonpath":       {o: "jsonpath={.hostname}", want: "cache-0\ndb-master\ncache-0\ndb-master\n"},
		"custom-columns": {o: "custom-columns=NAME:.hostname", want: "NAME\ncache-0\ndb-master\ncache-0\ndb-master\n"},
		"no headers":     {noHeaders: true, want: "cache-0     cache   bound   i-legacy              10.0.3.1   <unknown>\n" + "db-master   db      bound   i-0d1b2c3d4e5f60001   10.0.2.1   120m\n" + "cache-0     cache   bound   i-legacy              10.0.3.1   <unknown>\n" + "db-master   db      bound   i-0d1b2c3d4e5f60001   10.0.2.1   120m\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			s := table.NewStream(&b, mustFormat(t, tt.o, tt.noHeaders), func() time.Time { return now })
			for range 2 {
				if err := s.Print(events); err != nil {
					t.Fatal(err)
				}
			}
			if b.String() != tt.want {
				t.Errorf("-o %q:\ngot:\n%q\nwant:\n%q", tt.o, b.String(), tt.want)
			}
		})
	}
}

// ParseFormat never panics, and what it accepts prints a list without one.
func FuzzParseFormat(f *testing.F) {
	for _, s := range []string{"", "wide", "name", "jsonpath={.items[*].hostname}", "custom-columns=A:.ip,B:role", "custom-columns=A:{.x", "jsonpath={range .items[*]}{.ip}{end}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		format, err := table.ParseFormat(s)
		if err != nil {
			return
		}
		var b bytes.Buffer
		_ = table.Names(&b, fixture(), format, false, now)
	})
}
