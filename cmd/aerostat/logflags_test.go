package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// The logging flags are controller-runtime's zap options with 1.x's
// --loglevel beside them; the logger they build logs what they say.
func TestLogFlags(t *testing.T) {
	tests := map[string]struct {
		args []string
		// debug, info: whether a V(1) and a V(0) line are written.
		debug, info bool
		console     bool
		wantErr     string
	}{
		"default":         {info: true},
		"1.x DEBUG":       {args: []string{"--loglevel", "DEBUG"}, debug: true, info: true},
		"1.x lower case":  {args: []string{"--loglevel=warning"}},
		"1.x ERROR":       {args: []string{"--loglevel", "ERROR"}},
		"zap level":       {args: []string{"--zap-log-level", "debug"}, debug: true, info: true},
		"zap error":       {args: []string{"--zap-log-level=error"}},
		"zap encoder":     {args: []string{"--zap-encoder", "console"}, info: true, console: true},
		"zap devel":       {args: []string{"--zap-devel"}, debug: true, info: true, console: true},
		"both levels":     {args: []string{"--loglevel", "DEBUG", "--zap-log-level", "info"}, wantErr: `--loglevel "DEBUG" and --zap-log-level: give one of them`},
		"bad 1.x level":   {args: []string{"--loglevel", "LOUD"}, wantErr: `--loglevel "LOUD": want DEBUG, INFO, WARNING or ERROR`},
		"bad zap level":   {args: []string{"--zap-log-level", "loud"}, wantErr: "loud"},
		"bad zap encoder": {args: []string{"--zap-encoder", "xml"}, wantErr: "xml"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			fl := pflag.NewFlagSet("t", pflag.ContinueOnError)
			fl.SetOutput(&bytes.Buffer{})
			var f logFlags
			f.register(fl)
			err := fl.Parse(tt.args)
			var out bytes.Buffer
			if err == nil {
				l, lerr := f.logger(&out)
				err = lerr
				if err == nil {
					l.V(1).Info("debug line")
					l.Info("info line")
				}
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("%v: err = %v, want one mentioning %s", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if strings.Contains(got, "debug line") != tt.debug || strings.Contains(got, "info line") != tt.info {
				t.Errorf("%v: logged %q; want debug %v, info %v", tt.args, got, tt.debug, tt.info)
			}
			if tt.info && strings.HasPrefix(got, "{") == tt.console {
				t.Errorf("%v: logged %q; want console encoding %v", tt.args, got, tt.console)
			}
		})
	}
}

// Every long-running command takes the same logging flags.
func TestCommandsShareLogFlags(t *testing.T) {
	root := newRootCmd()
	want := []string{"agent", "update", "register", "promote"}
	for _, c := range root.Commands() {
		if c.Name() == "controller" || c.Name() == "store" {
			want = append(want, c.Name())
		}
	}
	for _, name := range want {
		cmd, _, err := root.Find([]string{name})
		if err != nil || cmd.Name() != name {
			t.Errorf("command %s: %v", name, err)
			continue
		}
		for _, flag := range []string{"zap-log-level", "zap-encoder", "zap-devel", "zap-stacktrace-level", "zap-time-encoding", "loglevel"} {
			if cmd.Flags().Lookup(flag) == nil {
				t.Errorf("%s has no --%s", name, flag)
			}
		}
	}
}
