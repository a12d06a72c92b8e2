// Package nodeclaim writes a node's own claim (register, promote) to the
// ledger: plan with naming.NodeClaim, compare-and-set through
// ledger.Claim, read back the name held. The controller runs it for
// attested nodes (internal/attest); `aerostat register` runs it directly
// in the trusted 1.x migration mode.
package nodeclaim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// ErrAlreadyMaster refuses a promote of the instance holding the master.
var ErrAlreadyMaster = errors.New("already the master")

// ErrNotMasterful refuses a promote in a service without a master.
var ErrNotMasterful = errors.New("not a masterful service")

// ErrNoName is Claim's error when every round's claim was overwritten
// before its read-back (a 1.x writer without compare-and-set took it).
var ErrNoName = errors.New("got no name")

// Options configure Claim.
type Options struct {
	Store ledger.Store
	// AliasRules, when set, builds the alias rules from every service's
	// records (the controller's AliasGuard.Rules); refused aliases are not
	// written.
	AliasRules func(all []naming.Record) naming.AliasRules
	Clock      clock.PassiveClock // the real clock when nil
}

func (o Options) clock() clock.PassiveClock {
	if o.Clock == nil {
		return clock.RealClock{}
	}
	return o.Clock
}

// maxRounds bounds claim-then-read-back rounds lost to writers without
// compare-and-set (1.x clients).
const maxRounds = 3

// Claim claims c (a promote when c.DesiredMaster is set) and returns the
// name the instance holds afterwards. Errors: ErrNotMasterful or
// ErrAlreadyMaster (wrapped) for a refused promote; store errors as
// ledger.Claim returns them; ErrNoName (wrapped) after maxRounds rounds.
func Claim(ctx context.Context, c naming.NodeClaim, opts Options) (string, error) {
	log := logr.FromContextOrDiscard(ctx).WithValues("service", c.Info.Service, "instance", c.InstanceID)
	plan, err := Planner(ctx, c, opts.Store, opts.AliasRules, opts.clock())
	if err != nil {
		return "", err
	}
	// A 1.x client still writing without compare-and-set can overwrite the
	// name between our claim and the read-back; claiming again then gets
	// this instance the next free name instead of failing the boot.
	var problems []string
	for range maxRounds {
		res, err := ledger.Claim(ctx, opts.Store, c.Info.Service, plan)
		if err != nil {
			return "", err
		}
		for _, ch := range res.Changes {
			log.Info("ledger updated", "change", naming.Describe(ch))
		}
		for _, p := range res.Problems {
			log.Info("ledger problem", "problem", p)
		}
		problems = res.Problems
		recs, err := opts.Store.Records(ctx, c.Info.Service)
		if err != nil {
			return "", fmt.Errorf("reading back the claim: %w", err)
		}
		if name, ok := naming.HeldBy(recs, c.InstanceID); ok {
			return name, nil
		}
	}
	return "", fmt.Errorf("instance %s %w in service %s after %d claims (problems: %s)", c.InstanceID, ErrNoName, c.Info.Service, maxRounds, strings.Join(problems, "; "))
}

// Planner returns the plan function ledger.Claim runs for c (also used by
// `register --dry-run`). It refuses a promote in an iterative service
// and, on each plan, a promote of the instance already holding the master.
// With aliasRules it reads every service's records once to build them.
func Planner(ctx context.Context, c naming.NodeClaim, store ledger.Store, aliasRules func([]naming.Record) naming.AliasRules, clk clock.PassiveClock) (func([]naming.Record) (naming.Result, error), error) {
	promote := c.DesiredMaster != ""
	if promote {
		if err := CheckPromote(c.Info); err != nil {
			return nil, err
		}
	}
	var rules naming.AliasRules
	if aliasRules != nil {
		all, err := store.Records(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("reading every service's names for alias checks: %w", err)
		}
		rules = aliasRules(all)
	}
	master := naming.Hostname(c.Info.Service, naming.Masterful, naming.RoleMaster, 0)
	return func(recs []naming.Record) (naming.Result, error) {
		if promote {
			if cur, ok := naming.HeldBy(recs, c.InstanceID); ok && cur == master {
				return naming.Result{}, fmt.Errorf("instance %s holds %s: %w", c.InstanceID, cur, ErrAlreadyMaster)
			}
		}
		in := c.Input(recs, clk.Now())
		in.AliasRules = rules
		return naming.Plan(in)
	}, nil
}

// CheckPromote refuses (ErrNotMasterful, wrapped) a promote in a service
// without a master, before anything is read or asked.
func CheckPromote(info naming.Info) error {
	if info.Scheme != naming.Masterful {
		return fmt.Errorf("service %s is %s: %w; only masterful services have a master", info.Service, strings.ToLower(string(info.Scheme)), ErrNotMasterful)
	}
	return nil
}

// HoldBack is the hold-back the controller applies to service: its stored
// policy, else def. from says which, for logs and reports ("default", or
// "ledger policy set by <source>").
func HoldBack(ctx context.Context, store ledger.PolicyStore, service string, def time.Duration) (d time.Duration, from string, err error) {
	p, found, err := store.Policy(ctx, service)
	if err != nil {
		return 0, "", err
	}
	if !found {
		return def, "default", nil
	}
	return p.HoldBack, "ledger policy set by " + p.Source, nil
}

// Preview is Claim without the write (`register --dry-run`): the changes
// Claim would make now and the name the instance would hold after them
// ("" if none).
func Preview(ctx context.Context, c naming.NodeClaim, opts Options) ([]naming.Change, string, error) {
	clk := opts.clock()
	plan, err := Planner(ctx, c, opts.Store, opts.AliasRules, clk)
	if err != nil {
		return nil, "", err
	}
	recs, err := opts.Store.Records(ctx, c.Info.Service)
	if err != nil {
		return nil, "", fmt.Errorf("reading ledger: %w", err)
	}
	res, err := plan(recs)
	if err != nil {
		return nil, "", err
	}
	after, err := naming.Apply(recs, res.Changes, clk.Now())
	if err != nil {
		return nil, "", fmt.Errorf("previewing the plan: %w", err)
	}
	name, _ := naming.HeldBy(after, c.InstanceID)
	return res.Changes, name, nil
}
