package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
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
	fl.DurationVar(&f.holdBack, "hold-back", controllers.DefaultHoldBack, "override the service's hold-back (default: the policy the controller stored in the ledger, else 3m); 0 reuses a released name at once (1.x)")
}

// holdBackFor is the hold-back this node applies to service: --hold-back
// when given, else the policy stored in the ledger by the controller,
// else the controller's default. It returns where the value came from.
func (f *registerFlags) holdBackFor(ctx context.Context, store ledger.PolicyStore, service string) (time.Duration, string, error) {
	if f.holdBackSet {
		if f.holdBack < 0 {
			return 0, "", fmt.Errorf("--hold-back %v: must not be negative", f.holdBack)
		}
		return f.holdBack, "--hold-back", nil
	}
	p, found, err := store.Policy(ctx, service)
	if err != nil {
		return 0, "", err
	}
	if !found {
		return controllers.DefaultHoldBack, "default", nil
	}
	return p.HoldBack, "ledger policy set by " + p.Source, nil
}

func newRegisterCmd() *cobra.Command {
	var f registerFlags
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Claim a name for this instance and print it (1.x --register)",
		Long: `Reads the service from --info-file, finds this instance (EC2 metadata,
--instance-id/--ip or --offline) and claims the smallest free name of the
service in the ledger with a compare-and-set, so concurrent registrations
never get the same name. Registering again returns the same name.`,
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
		who, err := cloud.SelfIdentity(ctx, cloud.IMDSOptions{Endpoint: f.imdsEndpoint})
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

// claimInput builds the planner input for a node acting on its own behalf.
// The observation is partial (Complete false): it holds this instance and,
// taken from the ledger, the instances bound in the service, so nothing is
// reaped and a change-over can move the old master (1.x trusted the ledger
// the same way). This instance is the newest, so it wins alias conflicts,
// as a 1.x registration took an alias away from any other record. Names
// the controller released recently are held back from it as the
// service's policy holds them (holdBack, read from the ledger); its own
// former name it may always take back.
func claimInput(info naming.Info, id, ip string, records []naming.Record, now time.Time, desiredMaster string, holdBack time.Duration) naming.Input {
	in := naming.Input{
		Policy: naming.Policy{
			Service:         info.Service,
			Scheme:          info.Scheme,
			InstanceAliases: map[string][]string{id: slices.Clone(info.Aliases)},
			DesiredMaster:   desiredMaster,
			Reap:            naming.ReapPolicy{HoldBack: holdBack},
		},
		Records: records,
		Now:     now,
	}
	if in.Policy.InstanceAliases[id] == nil {
		in.Policy.InstanceAliases[id] = []string{}
	}
	in.Observed.Instances = append(in.Observed.Instances, naming.Instance{ID: id, PrivateIP: ip, State: naming.StateRunning, LaunchTime: now})
	seen := map[string]bool{id: true}
	for _, r := range records {
		if r.Free() || seen[r.InstanceID] || r.Service != info.Service {
			continue
		}
		seen[r.InstanceID] = true
		in.Observed.Instances = append(in.Observed.Instances, naming.Instance{ID: r.InstanceID, PrivateIP: r.IP, State: naming.StateRunning, LaunchTime: r.ClaimedAt})
	}
	return in
}

// holding returns the name id holds in records (master first, then lowest).
func holding(records []naming.Record, id string) (string, bool) {
	var names []naming.Record
	for _, r := range records {
		if r.InstanceID == id {
			names = append(names, r)
		}
	}
	if len(names) == 0 {
		return "", false
	}
	slices.SortFunc(names, func(a, b naming.Record) int {
		if (a.Role == naming.RoleMaster) != (b.Role == naming.RoleMaster) {
			if a.Role == naming.RoleMaster {
				return -1
			}
			return 1
		}
		return a.Ordinal - b.Ordinal
	})
	return names[0].Hostname, true
}

// errAlreadyMaster and errNotMasterful refuse a promote.
var (
	errAlreadyMaster = errors.New("already the master")
	errNotMasterful  = errors.New("not a masterful service")
)

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
	if promote && info.Scheme != naming.Masterful {
		return fmt.Errorf("service %s is %s: %w; only masterful services have a master", info.Service, strings.ToLower(string(info.Scheme)), errNotMasterful)
	}
	id, ip, err := f.identity(ctx)
	if err != nil {
		return err
	}
	var name string
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		name, err = claimOnce(ctx, f, info, id, ip, promote, log, out)
		if err == nil || !transient(err) || ctx.Err() != nil {
			break
		}
		// A booting fleet can swamp the store for a moment; retry until
		// --timeout rather than leave the machine without a name.
		log.Info("ledger unavailable; retrying", "error", err.Error(), "in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff/2 + rand.N(backoff)):
		}
	}
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
	plan := func(recs []naming.Record) (naming.Result, error) {
		if promote {
			if cur, ok := holding(recs, id); ok && cur == naming.Hostname(info.Service, naming.Masterful, naming.RoleMaster, 0) {
				return naming.Result{}, fmt.Errorf("instance %s holds %s: %w", id, cur, errAlreadyMaster)
			}
		}
		return naming.Plan(claimInput(info, id, ip, recs, time.Now(), desired, holdBack))
	}
	if f.dryRun {
		recs, err := store.Records(ctx, info.Service)
		if err != nil {
			return "", fmt.Errorf("reading ledger: %w", err)
		}
		res, err := plan(recs)
		if err != nil {
			return "", err
		}
		return "", printPlan(out, res, recs, id)
	}
	// A 1.x client still writing without compare-and-set can overwrite the
	// name between our claim and the read-back; claiming again then gets
	// this instance the next free name instead of failing the boot.
	var problems []string
	for range maxClaimRounds {
		res, err := ledger.Claim(ctx, store, info.Service, plan)
		if err != nil {
			return "", err
		}
		for _, c := range res.Changes {
			log.Info("ledger updated", "change", naming.Describe(c))
		}
		for _, p := range res.Problems {
			log.Info("ledger problem", "problem", p)
		}
		problems = res.Problems
		recs, err := store.Records(ctx, info.Service)
		if err != nil {
			return "", fmt.Errorf("reading back the claim: %w", err)
		}
		if name, ok := holding(recs, id); ok {
			return name, nil
		}
	}
	return "", fmt.Errorf("instance %s got no name in service %s after %d claims (problems: %s)", id, info.Service, maxClaimRounds, strings.Join(problems, "; "))
}

// maxClaimRounds bounds claim-then-read-back rounds lost to writers
// without compare-and-set (1.x clients).
const maxClaimRounds = 3

// transient reports store errors worth retrying: unreachable, timed out,
// connection pool exhausted. Bad input, planner refusals and lost
// compare-and-sets (Claim already retried those) are not.
func transient(err error) bool {
	// Server selection and pool waits time out wrapping DeadlineExceeded.
	return mongo.IsNetworkError(err) || mongo.IsTimeout(err)
}

func printPlan(out io.Writer, res naming.Result, recs []naming.Record, id string) error {
	// Apply the plan to a copy to tell which name this instance would hold.
	after := slices.Clone(recs)
	for _, c := range res.Changes {
		fmt.Fprintf(out, "would %s\n", naming.Describe(c))
		r := naming.Record{Hostname: c.Hostname, Service: c.Service, Role: c.Role, Ordinal: c.Ordinal}
		if c.Type == naming.Bind {
			r.InstanceID = c.InstanceID
		}
		i := slices.IndexFunc(after, func(x naming.Record) bool { return x.Hostname == c.Hostname })
		switch {
		case c.Type != naming.Bind && c.Type != naming.Release:
		case i >= 0:
			after[i] = r
		default:
			after = append(after, r)
		}
	}
	if len(res.Changes) == 0 {
		fmt.Fprintln(out, "no changes")
	}
	if name, ok := holding(after, id); ok {
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
