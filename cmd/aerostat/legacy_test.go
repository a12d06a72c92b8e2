package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/aerostat-io/aerostat/client"
)

func TestTranslateLegacyArgs(t *testing.T) {
	tests := map[string]struct {
		in      []string
		want    [][]string
		wantErr bool
	}{
		"2.x command untouched":    {in: []string{"agent", "--server", "x"}, want: [][]string{{"agent", "--server", "x"}}},
		"no args untouched":        {in: []string{}, want: [][]string{{}}},
		"help untouched":           {in: []string{"--help"}, want: [][]string{{"--help"}}},
		"2.x flags only untouched": {in: []string{"--server=x"}, want: [][]string{{"--server=x"}}},
		"supervisord server line": {
			in:   []string{"--update", "--daemon", "--server=localhost", "--loglevel=DEBUG"},
			want: [][]string{{"agent", "--server=localhost", "--loglevel=DEBUG"}},
		},
		"supervisord client line": {
			in:   []string{"--update", "--daemon", "--loglevel=DEBUG"},
			want: [][]string{{"agent", "--loglevel=DEBUG"}},
		},
		"one update": {
			in:   []string{"--update", "--legacy-updater", "/usr/local/bin/old", "--server", "db1"},
			want: [][]string{{"update", "--server=db1", "--legacy-updater=/usr/local/bin/old"}},
		},
		"workstation dry run update": {
			in:   []string{"--server=localhost", "--dryrun", "--offline", "--update"},
			want: [][]string{{"update", "--server=localhost", "--dry-run"}},
		},
		"workstation dry run register": {
			in:   []string{"--server=localhost", "--dryrun", "--offline", "--register"},
			want: [][]string{{"register", "--server=localhost", "--dry-run", "--offline"}},
		},
		"change master": {
			in:   []string{"--change-master"},
			want: [][]string{{"promote"}},
		},
		"register then update in 1.x order": {
			in:   []string{"--update", "--register", "--legacy-updater=/bin/x"},
			want: [][]string{{"register", "--set-hostname"}, {"update", "--legacy-updater=/bin/x"}},
		},
		"register on a node sets the hostname, as 1.x": {
			in:   []string{"--register", "--server=admin-master"},
			want: [][]string{{"register", "--server=admin-master", "--set-hostname"}},
		},
		"unknown option":        {in: []string{"--update", "--verbose"}, wantErr: true},
		"missing value":         {in: []string{"--update", "--server"}, wantErr: true},
		"value on a switch":     {in: []string{"--update=yes"}, wantErr: true},
		"options but no action": {in: []string{"--dryrun", "--server=x"}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := translateLegacyArgs(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// 1.x command lines, unchanged, against a store named as 1.x names it
// (AEROSTAT_SERVER=host:port, database "aerostat").
func TestLegacyCommandLines(t *testing.T) {
	server := startStore(t)
	dir := t.TempDir()
	webInfo, dbInfo := filepath.Join(dir, "web_info"), filepath.Join(dir, "db_info")
	for path, body := range map[string]string{webInfo: "web iterative www\n", dbInfo: "db masterful\n"} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AEROSTAT_SERVER", server)
	t.Setenv("AEROSTAT_INFO", webInfo)
	hostnameBefore, _ := os.Hostname()
	etcHosts, _ := os.ReadFile("/etc/hosts")

	steps := []struct {
		name     string
		info     string
		args     []string
		wantCode int
		wantOut  []string // substrings of stdout
		wantErr  string   // substring of stderr
	}{
		{"register offline", webInfo, []string{"--register", "--offline", "--loglevel=DEBUG"}, 0, []string{"web-0\n"}, ""},
		{"register again: same name", webInfo, []string{"--register", "--offline"}, 0, []string{"web-0\n"}, ""},
		{"workstation dry run register", webInfo, []string{"--server=" + server, "--dryrun", "--offline", "--register"}, 0,
			[]string{"no changes", "test-instance would hold web-0"}, ""},
		{"workstation dry run update prints the file", webInfo, []string{"--server=" + server, "--dryrun", "--offline", "--update"}, 0,
			[]string{"# AEROSTAT\n127.0.0.1 web-0\n127.0.0.1 www\n# /AEROSTAT\n"}, ""},
		{"change-master of an iterative service", webInfo, []string{"--change-master", "--offline"}, 1, nil, "not a masterful service"},
		{"register masterful", dbInfo, []string{"--register", "--offline"}, 0, []string{"db-master\n"}, ""},
		{"change-master when already master", dbInfo, []string{"--change-master", "--offline"}, 1, nil, "already the master"},
		{"unknown 1.x option", webInfo, []string{"--update", "--verbose"}, 2, nil, `"--verbose"`},
		{"bad log level", webInfo, []string{"--update", "--dryrun", "--loglevel=LOUD"}, 1, nil, "--loglevel"},
	}
	for _, s := range steps {
		t.Setenv("AEROSTAT_INFO", s.info)
		out, stderr, code := run1x(s.args...)
		if code != s.wantCode {
			t.Fatalf("%s: aerostat %s: exit %d, want %d\nstdout: %s\nstderr: %s", s.name, strings.Join(s.args, " "), code, s.wantCode, out, stderr)
		}
		for _, w := range s.wantOut {
			if !strings.Contains(out, w) {
				t.Errorf("%s: stdout %q lacks %q", s.name, out, w)
			}
		}
		if !strings.Contains(stderr, s.wantErr) {
			t.Errorf("%s: stderr %q lacks %q", s.name, stderr, s.wantErr)
		}
	}
	if h, _ := os.Hostname(); h != hostnameBefore {
		t.Errorf("hostname changed to %q by an --offline registration", h)
	}
	if b, _ := os.ReadFile("/etc/hosts"); !bytes.Equal(b, etcHosts) {
		t.Error("a --dryrun update changed /etc/hosts")
	}
}

func TestServerDefault(t *testing.T) {
	tests := map[string]struct {
		env, want string
	}{
		"1.x default":    {"", "admin-master"},
		"env":            {"ledger.internal", "ledger.internal"},
		"env with a URI": {"mongodb://a,b/?replicaSet=rs0", "mongodb://a,b/?replicaSet=rs0"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv("AEROSTAT_SERVER", tc.env)
			for _, cmd := range []*cobra.Command{newRegisterCmd(), newPromoteCmd(), newUpdateCmd(), newAgentCmd()} {
				if got := cmd.Flags().Lookup("server").DefValue; got != tc.want {
					t.Errorf("%s --server default = %q, want %q", cmd.Name(), got, tc.want)
				}
			}
		})
	}
	for server, want := range map[string]string{
		"admin-master":   "mongodb://admin-master:27017/",
		"localhost":      "mongodb://localhost:27017/",
		"10.0.0.5:27018": "mongodb://10.0.0.5:27018/",
		"mongodb://x/":   "mongodb://x/",
	} {
		if got, err := client.ServerURI(server); err != nil || got != want {
			t.Errorf("ServerURI(%q) = %q, %v; want %q", server, got, err, want)
		}
	}
}
