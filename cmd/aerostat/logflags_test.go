package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
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

// Every command that does more than print its version or a completion
// script takes the same logging flags.
func TestCommandsShareLogFlags(t *testing.T) {
	exempt := map[string]bool{"version": true, "completion": true, "help": true}
	var walk func(c *cobra.Command)
	checked := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if !c.Runnable() || exempt[c.Name()] || (c.Parent() != nil && exempt[c.Parent().Name()]) {
			return
		}
		checked++
		for _, flag := range []string{"zap-log-level", "zap-encoder", "zap-devel", "zap-stacktrace-level", "zap-time-encoding", "loglevel"} {
			if c.Flags().Lookup(flag) == nil {
				t.Errorf("%s has no --%s", c.CommandPath(), flag)
			}
		}
	}
	walk(newRootCmd())
	if checked < 11 {
		t.Errorf("checked %d commands, want at least 11 (agent, update, register, promote, controller, store, plan, adopt, demo, get, describe)", checked)
	}
}

// A report command's level flag reaches its logger: a bad one fails the
// command with an error naming the flag.
func TestReportCommandsReadLogFlags(t *testing.T) {
	for _, args := range [][]string{
		{"plan", "--data-dir", t.TempDir(), "--loglevel", "LOUD"},
		{"adopt", "--data-dir", t.TempDir(), "--loglevel", "LOUD"},
		{"get", "names", "--ledger", "127.0.0.1:1", "--loglevel", "LOUD"},
	} {
		root := newRootCmd()
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(args)
		if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), `--loglevel "LOUD"`) {
			t.Errorf("%v: err = %v, want one naming --loglevel \"LOUD\"", args, err)
		}
	}
}
