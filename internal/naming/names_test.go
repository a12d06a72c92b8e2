package naming

import (
	"slices"
	"strings"
	"testing"
)

func TestParseScheme(t *testing.T) {
	tests := map[string]struct {
		in   string
		want Scheme
		err  bool
	}{
		"1.x iterative": {in: "iterative", want: Iterative},
		"1.x masterful": {in: "masterful", want: Masterful},
		"Iterative":     {in: "Iterative", want: Iterative},
		"Masterful":     {in: "Masterful", want: Masterful},
		"upper":         {in: "MASTERFUL", want: Masterful},
		"empty":         {in: "", err: true},
		"unknown":       {in: "primary", err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseScheme(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("ParseScheme(%q) = %q, %v", tc.in, got, err)
			}
			if err != nil && !strings.Contains(err.Error(), `"`+tc.in+`"`) {
				t.Fatalf("error %q does not name the value", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		fn    func(field, v string) error
		value string
		ok    bool
	}{
		"label":              {ValidateLabel, "web-1", true},
		"label digits":       {ValidateLabel, "0", true},
		"label 63":           {ValidateLabel, strings.Repeat("a", 63), true},
		"label 64":           {ValidateLabel, strings.Repeat("a", 64), false},
		"label empty":        {ValidateLabel, "", false},
		"label leading dash": {ValidateLabel, "-web", false},
		"label trailing":     {ValidateLabel, "web-", false},
		"label upper":        {ValidateLabel, "Web", false},
		"label dot":          {ValidateLabel, "web.1", false},
		"label shell":        {ValidateLabel, "web;rm", false},
		"label space":        {ValidateLabel, "web 1", false},
		"host dotted":        {ValidateHostname, "db.internal.example", true},
		"host single":        {ValidateHostname, "db", true},
		"host empty label":   {ValidateHostname, "db..internal", false},
		"host trailing dot":  {ValidateHostname, "db.", false},
		"host too long":      {ValidateHostname, strings.Repeat("a.", 127) + "a", false},
		"host bad label":     {ValidateHostname, "db.-x", false},
		"ip v4":              {ValidateIP, "10.0.0.1", true},
		"ip v6":              {ValidateIP, "fd00::1", true},
		"ip empty":           {ValidateIP, "", false},
		"ip cidr":            {ValidateIP, "10.0.0.1/8", false},
		"ip zone":            {ValidateIP, "fe80::1%eth0", false},
		"ip junk":            {ValidateIP, "10.0.0.256", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.fn("thefield", tc.value)
			if (err == nil) != tc.ok {
				t.Fatalf("%q: err = %v, want ok=%v", tc.value, err, tc.ok)
			}
			if err != nil && (!strings.Contains(err.Error(), "thefield") || !strings.Contains(err.Error(), `"`+tc.value+`"`)) {
				t.Fatalf("error %q must name field and value", err)
			}
		})
	}
}

func TestHostnameRoundTrip(t *testing.T) {
	tests := map[string]struct {
		scheme Scheme
		host   string
		role   Role
		ord    int
		ok     bool
	}{
		"iterative 0":          {Iterative, "web-0", RoleNone, 0, true},
		"iterative 10":         {Iterative, "web-10", RoleNone, 10, true},
		"leading zero":         {Iterative, "web-01", RoleNone, 0, false},
		"other service":        {Iterative, "api-1", RoleNone, 0, false},
		"prefix service":       {Iterative, "webx-1", RoleNone, 0, false},
		"negative":             {Iterative, "web--1", RoleNone, 0, false},
		"huge":                 {Iterative, "web-99999999999", RoleNone, 0, false},
		"master":               {Masterful, "web-master", RoleMaster, 0, true},
		"slave 1":              {Masterful, "web-slave-1", RoleSlave, 1, true},
		"slave 0 not a name":   {Masterful, "web-slave-0", RoleNone, 0, false},
		"iterative as master":  {Masterful, "web-1", RoleNone, 0, false},
		"master as iterative":  {Iterative, "web-master", RoleNone, 0, false},
		"slave empty number":   {Masterful, "web-slave-", RoleNone, 0, false},
		"unknown scheme":       {Scheme("x"), "web-1", RoleNone, 0, false},
		"dashed service slave": {Masterful, "web-slave-slave-2", RoleNone, 0, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			role, ord, ok := ParseHostname("web", tc.scheme, tc.host)
			if ok != tc.ok || role != tc.role || ord != tc.ord {
				t.Fatalf("ParseHostname(%q) = %q %d %v", tc.host, role, ord, ok)
			}
			if ok && Hostname("web", tc.scheme, role, ord) != tc.host {
				t.Fatalf("Hostname does not round-trip %q", tc.host)
			}
		})
	}
}

func TestParseInfo(t *testing.T) {
	tests := map[string]struct {
		in   string
		want Info
		err  string
	}{
		"service only":    {in: "web\n", want: Info{Service: "web", Scheme: Iterative}},
		"masterful":       {in: "db masterful", want: Info{Service: "db", Scheme: Masterful}},
		"aliases":         {in: "db masterful db.internal mysql mysql\n", want: Info{Service: "db", Scheme: Masterful, Aliases: []string{"db.internal", "mysql"}}},
		"tabs and lines":  {in: "# written by cloud-init\n web\titerative\n", want: Info{Service: "web", Scheme: Iterative}},
		"empty":           {in: " \n", err: "empty"},
		"bad service":     {in: "Web_1", err: `service "Web_1"`},
		"bad type":        {in: "web primary", err: `"primary"`},
		"bad alias":       {in: "web iterative bad_alias", err: `alias "bad_alias"`},
		"injection":       {in: "web;reboot", err: `"web;reboot"`},
		"only comment":    {in: "# nothing", err: "empty"},
		"crlf line ends":  {in: "web iterative\r\n", want: Info{Service: "web", Scheme: Iterative}},
		"uppercase alias": {in: "web iterative WWW", err: `"WWW"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseInfo([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil || got.Service != tc.want.Service || got.Scheme != tc.want.Scheme || !slices.Equal(got.Aliases, tc.want.Aliases) {
				t.Fatalf("ParseInfo = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseInfo(f *testing.F) {
	for _, s := range []string{"web", "db masterful db.internal", "web iterative a b c", "", "#x\nweb", "web\x00", "Web Iterative"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseInfo(data)
		if err != nil {
			return
		}
		if ValidateLabel("service", info.Service) != nil {
			t.Fatalf("accepted bad service %q", info.Service)
		}
		if info.Scheme != Iterative && info.Scheme != Masterful {
			t.Fatalf("accepted scheme %q", info.Scheme)
		}
		for _, a := range info.Aliases {
			if ValidateHostname("alias", a) != nil {
				t.Fatalf("accepted bad alias %q", a)
			}
		}
		// What was accepted reads back the same when written out.
		again, err := ParseInfo([]byte(info.Service + " " + string(info.Scheme) + " " + strings.Join(info.Aliases, " ")))
		if err != nil || again.Service != info.Service || again.Scheme != info.Scheme || !slices.Equal(again.Aliases, info.Aliases) {
			t.Fatalf("round trip: %+v -> %+v, %v", info, again, err)
		}
	})
}

func FuzzParseHostname(f *testing.F) {
	for _, s := range []string{"web-0", "web-10", "web-master", "web-slave-1", "web-slave-0", "web-01", "web-", "web-9999999999"} {
		f.Add("web", s, true)
		f.Add("web", s, false)
	}
	f.Fuzz(func(t *testing.T, service, host string, masterful bool) {
		scheme := Iterative
		if masterful {
			scheme = Masterful
		}
		role, ord, ok := ParseHostname(service, scheme, host)
		if !ok {
			return
		}
		if got := Hostname(service, scheme, role, ord); got != host {
			t.Fatalf("ParseHostname(%q,%q) = %q %d, Hostname gives %q", service, host, role, ord, got)
		}
		if ord < 0 || (role == RoleSlave && ord < 1) || (scheme == Iterative && role != RoleNone) {
			t.Fatalf("bad parse %q %d", role, ord)
		}
	})
}

func FuzzValidateLabel(f *testing.F) {
	for _, s := range []string{"web", "web-1", "-a", "a-", "", "A", "a.b", strings.Repeat("x", 64), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateLabel("f", s)
		ok := len(s) >= 1 && len(s) <= 63 && s[0] != '-' && s[len(s)-1] != '-' &&
			strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
		if (err == nil) != ok {
			t.Fatalf("ValidateLabel(%q) = %v, want ok=%v", s, err, ok)
		}
		if err == nil && ValidateHostname("f", s) != nil {
			t.Fatalf("label %q is not a hostname", s)
		}
	})
}
