package main

import (
	"slices"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every command's --ledger defaults the same way: AEROSTAT_LEDGER, then
// 1.x's AEROSTAT_SERVER, then 1.x's admin-master.
func TestDefaultLedger(t *testing.T) {
	tests := map[string]struct {
		ledger, server, want string
	}{
		"neither":     {want: "admin-master"},
		"1.x env":     {server: "db1", want: "db1"},
		"ledger env":  {ledger: "mongodb://l", want: "mongodb://l"},
		"ledger wins": {ledger: "mongodb://l", server: "db1", want: "mongodb://l"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv("AEROSTAT_LEDGER", tt.ledger)
			t.Setenv("AEROSTAT_SERVER", tt.server)
			if got := defaultLedger(); got != tt.want {
				t.Errorf("defaultLedger() = %q, want %q", got, tt.want)
			}
		})
	}
}

// --server, where kept, is the same flag as --ledger under 1.x's name.
func TestLedgerServerAlias(t *testing.T) {
	tests := map[string]struct {
		args        []string
		alias       bool
		want        string
		wantChanged bool
		wantErr     bool
	}{
		"ledger":         {args: []string{"--ledger", "a"}, alias: true, want: "a", wantChanged: true},
		"server alias":   {args: []string{"--server", "b"}, alias: true, want: "b", wantChanged: true},
		"default":        {alias: true, want: "def"},
		"no alias":       {args: []string{"--server", "b"}, wantErr: true},
		"no alias, flag": {args: []string{"--ledger", "c"}, want: "c", wantChanged: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			fl := pflag.NewFlagSet("t", pflag.ContinueOnError)
			var v string
			addLedgerFlag(fl, &v, "def", "help", tt.alias)
			err := fl.Parse(tt.args)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("%v accepted", tt.args)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v != tt.want || ledgerChanged(fl) != tt.wantChanged {
				t.Errorf("%v: ledger %q changed %v, want %q %v", tt.args, v, ledgerChanged(fl), tt.want, tt.wantChanged)
			}
			if tt.alias && !fl.Lookup("server").Hidden {
				t.Error("--server shows in help; it is 1.x's alias only")
			}
		})
	}
}

// Every command that reads or writes the ledger has --ledger with the one
// default, so plain "aerostat get names", "aerostat plan" and "aerostat
// controller" all mean the same ledger.
func TestEveryCommandHasOneLedgerDefault(t *testing.T) {
	t.Setenv("AEROSTAT_LEDGER", "")
	t.Setenv("AEROSTAT_SERVER", "")
	var seen []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if f := c.LocalFlags().Lookup("ledger"); f != nil {
			seen = append(seen, c.CommandPath())
			if f.DefValue != defaultServer {
				t.Errorf("%s --ledger defaults to %q, want %q like every command", c.CommandPath(), f.DefValue, defaultServer)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	for _, want := range []string{"aerostat controller", "aerostat plan", "aerostat get", "aerostat agent", "aerostat register"} {
		if !slices.Contains(seen, want) {
			t.Errorf("%s has no --ledger (commands with one: %v)", want, seen)
		}
	}
}
