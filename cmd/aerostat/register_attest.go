package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/aerostat-io/aerostat/internal/attestclient"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// attestClientFlags select the attested mode of register and promote.
type attestClientFlags struct {
	controller, caFile, nonceFile string
}

func (f *attestClientFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.controller, "controller", os.Getenv("AEROSTAT_CONTROLLER"),
		"attested mode: ask the controller at this https:// URL (its feed address) to claim, proving who this instance is with its signed EC2 identity document; needs no ledger credentials (env AEROSTAT_CONTROLLER)")
	fl.StringVar(&f.caFile, "controller-ca-file", "", "CA certificate (PEM) the controller's certificate must chain to (the feed's CA; default: the system's roots)")
	fl.StringVar(&f.nonceFile, "nonce-file", "/var/lib/aerostat/attest-nonce",
		"attested mode: this instance's secret, made on first use and bound to the instance by the controller; keep it for the instance's life")
}

// check refuses flags that only the trusting direct mode has: in attested
// mode the identity comes from the signed document and the IP from EC2.
func (f *registerFlags) checkAttested() error {
	for _, c := range []struct {
		set  bool
		flag string
	}{{f.instanceID != "", "--instance-id"}, {f.ip != "", "--ip"}, {f.offline, "--offline"}, {f.dryRun, "--dry-run"}} {
		if c.set {
			return fmt.Errorf("%s cannot be combined with --controller: the controller takes the identity from the signed EC2 document and the IP from EC2", c.flag)
		}
	}
	if !strings.HasPrefix(f.attest.controller, "https://") {
		return fmt.Errorf("--controller %q: must be https:// (the nonce is a secret)", f.attest.controller)
	}
	return nil
}

// attested asks the controller to claim (or promote) for this instance.
func (f *registerFlags) attested(ctx context.Context, info naming.Info, promote bool) (string, error) {
	signed, err := attestclient.Evidence(ctx, f.imdsEndpoint)
	if err != nil {
		return "", fmt.Errorf("%w (attested mode needs EC2 instance metadata; in a container the metadata hop limit must be 2 or more)", err)
	}
	nonce, err := attestclient.Nonce(f.attest.nonceFile)
	if err != nil {
		return "", fmt.Errorf("--nonce-file: %w", err)
	}
	client, err := feed.NewHTTPClient(f.attest.caFile, "", f.timeout)
	if err != nil {
		return "", fmt.Errorf("--controller-ca-file: %w", err)
	}
	line := append([]string{info.Service, string(info.Scheme)}, info.Aliases...)
	return attestclient.Post(ctx, client, f.attest.controller, attestclient.Request{Signed: signed, Nonce: nonce, Info: strings.Join(line, " ")}, promote)
}

// retryableAttest reports controller answers and transport failures worth
// retrying until --timeout: the controller, EC2 or the ledger briefly
// unavailable. Refusals and bad input are final.
func retryableAttest(err error) bool {
	var se *attestclient.StatusError
	if errors.As(err, &se) {
		return se.Transient()
	}
	var ue *url.Error
	return errors.As(err, &ue)
}
