package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/imds"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/nodeclaim"
	"github.com/aerostat-io/aerostat/internal/retry"
)

// offlineInstanceID is 1.x's fake identity for --offline.
const offlineInstanceID = "test-instance"

type registerFlags struct {
	nodeFlags
	infoFile, instanceID, ip, imdsEndpoint string
	offline, setHostname                   bool
	hostnameFile                           string
	timeout                                time.Duration
	// holdBack overrides the service's stored policy when holdBackSet.
	holdBack    time.Duration
	holdBackSet bool
	attest      attestClientFlags
	aliases     aliasFlags
}

func (f *registerFlags) register(fl *pflag.FlagSet) {
	f.nodeFlags.register(fl)
	info := os.Getenv("AEROSTAT_INFO")
	if info == "" {
		info = "/etc/aerostat_info"
	}
	fl.StringVar(&f.infoFile, "info-file", info, "1.x info file: service [service_type [alias...]] (env AEROSTAT_INFO)")
	fl.StringVar(&f.instanceID, "instance-id", "", "this instance's id (default: from EC2 instance metadata, IMDSv2)")
	fl.StringVar(&f.ip, "ip", "", "this instance's private IP (default: from EC2 instance metadata)")
	fl.StringVar(&f.imdsEndpoint, "imds-endpoint", "", "instance metadata endpoint (default: AWS_EC2_METADATA_SERVICE_ENDPOINT or 169.254.169.254)")
	fl.BoolVar(&f.offline, "offline", false, "do not ask EC2: instance id "+offlineInstanceID+" (as 1.x)")
	fl.DurationVar(&f.timeout, "timeout", time.Minute, "give up after this long")
	f.attest.register(fl)
	f.aliases.register(fl)
	fl.DurationVar(&f.holdBack, "hold-back", ledger.DefaultHoldBack, "override the service's hold-back (default: the policy the controller stored in the ledger, else 3m); 0 reuses a released name at once (1.x)")
}

// holdBackFor is the hold-back this node applies to service: --hold-back
// when given, else the controller's (nodeclaim.HoldBack). It returns
// where the value came from.
func (f *registerFlags) holdBackFor(ctx context.Context, store ledger.PolicyStore, service string) (time.Duration, string, error) {
	if f.holdBackSet {
		if f.holdBack < 0 {
			return 0, "", fmt.Errorf("--hold-back %v: must not be negative", f.holdBack)
		}
		return f.holdBack, "--hold-back", nil
	}
	return nodeclaim.HoldBack(ctx, store, service, ledger.DefaultHoldBack)
}

func newRegisterCmd() *cobra.Command {
	var f registerFlags
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Claim a name for this instance and print it (1.x --register)",
		Long: `Reads the service from --info-file and claims the smallest free name of
the service, so concurrent registrations never get the same name.
Registering again returns the same name.

Attested mode (--controller https://...): the controller checks this
instance's signed EC2 identity document, its nonce (--nonce-file), and
EC2 (running, same private IP, tagged aerostat:service=<service>) before
it claims; this node needs no ledger credentials.

Direct mode (1.x migration, trusted nodes only): without --controller
the node writes the ledger itself with read-write credentials and is
trusted as it says (EC2 metadata, --instance-id/--ip or --offline): it
could take any name of any service. See docs/security.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.holdBackSet = cmd.Flags().Changed("hold-back")
			return runClaim(cmd.Context(), &f, false, cmd.OutOrStdout())
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVar(&f.setHostname, "set-hostname", false, "also set the system hostname and --hostname-file (no shell)")
	cmd.Flags().StringVar(&f.hostnameFile, "hostname-file", "/etc/hostname", "file --set-hostname writes")
	return cmd
}

// identity returns this instance's id and IP.
func (f *registerFlags) identity(ctx context.Context) (id, ip string, err error) {
	switch {
	case f.instanceID != "":
		id = f.instanceID
	case f.offline:
		id = offlineInstanceID
	default:
		who, err := imds.New(f.imdsEndpoint).Identity(ctx)
		if err != nil {
			// A container behind a bridge is one hop further away: with the
			// default hop limit of 1 the token PUT's answer never arrives.
			return "", "", fmt.Errorf("finding this instance (off EC2 use --instance-id and --ip, or --offline; in a container the instance's metadata hop limit must be 2 or more for IMDSv2): %w", err)
		}
		id, ip = who.InstanceID, who.PrivateIP
	}
	if f.ip != "" {
		ip = f.ip
	}
	if ip == "" && f.offline {
		ip = "127.0.0.1"
	}
	if ip == "" {
		return "", "", fmt.Errorf("--ip is required with --instance-id")
	}
	if a, err := netip.ParseAddr(ip); err != nil || a.Zone() != "" {
		return "", "", fmt.Errorf("--ip %q: not an IP address", ip)
	}
	return id, ip, nil
}

func readInfo(path string) (naming.Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return naming.Info{}, fmt.Errorf("reading info file: %w", err)
	}
	defer f.Close()
	// 1.x info files are one short line; refuse to read a huge file.
	data, err := io.ReadAll(io.LimitReader(f, 64<<10+1))
	if err != nil {
		return naming.Info{}, fmt.Errorf("reading info file %s: %w", path, err)
	}
	if len(data) > 64<<10 {
		return naming.Info{}, fmt.Errorf("info file %s: larger than 64 KiB", path)
	}
	info, err := naming.ParseInfo(data)
	if err != nil {
		return naming.Info{}, fmt.Errorf("info file %s: %w", path, err)
	}
	return info, nil
}

// runClaim registers (promote false) or promotes this instance.
func runClaim(ctx context.Context, f *registerFlags, promote bool, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	log, err := f.logger()
	if err != nil {
		return err
	}
	info, err := readInfo(f.infoFile)
	if err != nil {
		return err
	}
	if promote {
		if err := nodeclaim.CheckPromote(info); err != nil {
			return err
		}
	}
	var name string
	once, retryable := func() (err error) { name, err = f.attested(ctx, info, promote); return err }, retryableAttest
	if f.attest.controller != "" {
		if err := f.checkAttested(); err != nil {
			return err
		}
	} else {
		id, ip, err := f.identity(ctx)
		if err != nil {
			return err
		}
		once = func() (err error) { name, err = claimOnce(ctx, f, info, id, ip, promote, log, out); return err }
		retryable = ledger.Transient
	}
	// A booting fleet can swamp the store or the controller for a moment;
	// retry until --timeout rather than leave the machine without a name.
	// Pauses in [d/2, 3d/2) for d doubling from 100ms up to 5s.
	backoff := retry.New(clock.RealClock{}, retry.Exponential(50*time.Millisecond, 2500*time.Millisecond, 2))
	err = backoff.Until(ctx, once, retryable, func(err error, pause time.Duration) {
		log.Info("claim failed; retrying", "error", err.Error(), "in", pause)
	})
	if err != nil || name == "" {
		return err
	}
	if f.setHostname {
		if err := setHostname(name, f.hostnameFile); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintln(out, name)
	return err
}

// claimOnce opens the ledger and claims (or, with --dry-run, prints the
// plan and returns ""). It returns the name this instance holds.
func claimOnce(ctx context.Context, f *registerFlags, info naming.Info, id, ip string, promote bool, log logr.Logger, out io.Writer) (string, error) {
	store, err := f.openLedger(ctx, log, f.dryRun)
	if err != nil {
		return "", err
	}
	defer func() { _ = store.Close(context.WithoutCancel(ctx)) }()

	desired := ""
	if promote {
		desired = id
	}
	holdBack, from, err := f.holdBackFor(ctx, store, info.Service)
	if err != nil {
		return "", err
	}
	log.V(1).Info("hold-back", "service", info.Service, "holdBack", holdBack, "from", from)
	claim := naming.NodeClaim{Info: info, InstanceID: id, IP: ip, DesiredMaster: desired, HoldBack: holdBack}
	// The controller's alias rules hold here too: a node writing directly
	// must not shadow another service's name, localhost or the cluster's.
	guard, err := f.aliases.guard()
	if err != nil {
		return "", fmt.Errorf("alias rules: %w", err)
	}
	rules := func(all []naming.Record) naming.AliasRules { return guard.Rules(all, nil) }
	opts := nodeclaim.Options{Store: store, AliasRules: rules}
	if f.dryRun {
		changes, name, err := nodeclaim.Preview(ctx, claim, opts)
		if err != nil {
			return "", err
		}
		return "", printPlan(out, changes, id, name)
	}
	return nodeclaim.Claim(logr.NewContext(ctx, log), claim, opts)
}

// printPlan prints the changes of a --dry-run and the name instance id
// would hold once they are applied ("" if none).
func printPlan(out io.Writer, changes []naming.Change, id, name string) error {
	for _, c := range changes {
		fmt.Fprintf(out, "would %s\n", naming.Describe(c))
	}
	if len(changes) == 0 {
		fmt.Fprintln(out, "no changes")
	}
	if name != "" {
		_, err := fmt.Fprintf(out, "%s would hold %s\n", id, name)
		return err
	}
	return nil
}

// setHostname sets the kernel hostname and the hostname file, with no
// shell involved (1.x ran os.system('/bin/hostname %s')).
func setHostname(name, file string) error {
	if err := naming.ValidateHostname("hostname", name); err != nil {
		return err
	}
	if err := syscall.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("setting hostname %s: %w", name, err)
	}
	if file == "" {
		return nil
	}
	if err := os.WriteFile(file, []byte(name+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}
