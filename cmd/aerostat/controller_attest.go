//go:build !agentonly

package main

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/attest"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// attestServeFlags turn on node attestation beside the feed.
type attestServeFlags struct {
	enabled  bool
	bundle   string
	accounts []string
}

func (f *attestServeFlags) register(fl *pflag.FlagSet) {
	fl.BoolVar(&f.enabled, "attest-nodes", false,
		"serve register/promote for attested nodes beside the feed (HTTPS): nodes prove who they are with their signed EC2 identity document and need no ledger credentials")
	fl.StringVar(&f.bundle, "attest-ca-bundle", "",
		"PEM certificates that sign EC2 identity documents, each block with a \"Region: <region>\" header (default: AWS's certificates for the Regions bundled, see internal/attest/aws-rsa2048.pem)")
	fl.StringSliceVar(&f.accounts, "attest-accounts", nil, "AWS account ids whose instances may attest, comma separated (default: any)")
}

// mount serves attestation on the feed's server, outside the feed's token
// guard. The feed must be HTTPS: a node's nonce is a secret.
func (f *attestServeFlags) mount(srv *http.Server, ec2 cloud.Cloud, store ledger.Store, aliases *naming.AliasGuard, log logr.Logger) error {
	if !f.enabled {
		if f.bundle != "" || len(f.accounts) > 0 {
			return errors.New("--attest-ca-bundle and --attest-accounts need --attest-nodes")
		}
		return nil
	}
	if srv.TLSConfig == nil {
		return errors.New("--attest-nodes: the feed is plain HTTP (--feed-insecure); attestation needs its TLS")
	}
	st, ok := store.(attest.Store)
	if !ok {
		return errors.New("--attest-nodes: needs a MongoDB ledger (it binds nonces there)")
	}
	bundle, err := attest.AWSBundle()
	if f.bundle != "" {
		bundle, err = attest.LoadBundle(f.bundle)
	}
	if err != nil {
		return fmt.Errorf("--attest-ca-bundle: %w", err)
	}
	opts := attest.ServerOptions{Bundle: bundle, EC2: ec2, Store: st, Accounts: f.accounts,
		DefaultHoldBack: controllers.DefaultHoldBack, Logger: log}
	if aliases != nil {
		opts.AliasRules = func(all []naming.Record) naming.AliasRules { return aliases.Rules(all, nil) }
	}
	h, err := attest.NewHandler(opts)
	if err != nil {
		return err
	}
	srv.Handler = attest.Mount(srv.Handler, h)
	return nil
}
