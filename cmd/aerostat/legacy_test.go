package main

import (
	"reflect"
	"testing"
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
			want: [][]string{{"register"}, {"update", "--legacy-updater=/bin/x"}},
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
