package main

import (
	"os"

	"github.com/spf13/pflag"
)

// ledgerFlagHelp is the one description of --ledger every command shows.
const ledgerFlagHelp = "ledger MongoDB: a hostname (1.x style, port 27017) or a mongodb:// URI (env AEROSTAT_LEDGER, then AEROSTAT_SERVER)"

// defaultLedger is --ledger's default for every command: $AEROSTAT_LEDGER,
// then 1.x's $AEROSTAT_SERVER, then 1.x's admin-master.
func defaultLedger() string {
	for _, env := range []string{"AEROSTAT_LEDGER", "AEROSTAT_SERVER"} {
		if v := os.Getenv(env); v != "" {
			return v
		}
	}
	return defaultServer
}

// addLedgerFlag binds --ledger to v. With serverAlias, 1.x's --server is
// kept, hidden, as another name of the same flag; get and describe leave
// it to kubectl, whose --server names the API server.
func addLedgerFlag(fl *pflag.FlagSet, v *string, def, help string, serverAlias bool) {
	fl.StringVar(v, "ledger", def, help)
	if serverAlias {
		fl.StringVar(v, "server", def, "1.x's name of --ledger")
		_ = fl.MarkHidden("server")
	}
}

// ledgerChanged reports whether the ledger was given on the command line
// under either name.
func ledgerChanged(fl *pflag.FlagSet) bool {
	return fl.Changed("ledger") || fl.Changed("server")
}
