package reliability

import (
	"context"
	"errors"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/nodeclaim"
)

// RegisterPlan plans a node's own registration (desiredMaster empty) or
// promotion (desiredMaster = id) as `aerostat register` and `aerostat
// promote` plan it (naming.NodeClaim), with no hold-back.
func RegisterPlan(service string, scheme naming.Scheme, id, ip, desiredMaster string, now time.Time) func([]naming.Record) (naming.Result, error) {
	c := naming.NodeClaim{Info: naming.Info{Service: service, Scheme: scheme}, InstanceID: id, IP: ip, DesiredMaster: desiredMaster}
	return func(recs []naming.Record) (naming.Result, error) { return naming.Plan(c.Input(recs, now)) }
}

// Register claims a name for id through the code `aerostat register` (and
// promote) runs in direct mode, nodeclaim.Claim, planning at now with the
// hold-back the controller stored for the service (ledger.DefaultHoldBack
// when none is stored or store keeps no policies), as register does
// without --hold-back. It returns the name id holds afterwards. Errors are
// nodeclaim.Claim's; a claim overwritten in every round by a 1.x writer
// (no compare-and-set) returns "" and an error wrapping
// nodeclaim.ErrNoName.
func Register(ctx context.Context, store ledger.Store, service string, scheme naming.Scheme, id, ip, desiredMaster string, now time.Time) (string, error) {
	holdBack := ledger.DefaultHoldBack
	if ps, ok := ledger.PolicyStoreOf(store); ok {
		var err error
		if holdBack, _, err = nodeclaim.HoldBack(ctx, ps, service, ledger.DefaultHoldBack); err != nil {
			return "", err
		}
	}
	c := naming.NodeClaim{Info: naming.Info{Service: service, Scheme: scheme}, InstanceID: id, IP: ip, DesiredMaster: desiredMaster, HoldBack: holdBack}
	return nodeclaim.Claim(ctx, c, nodeclaim.Options{Store: store, Clock: clocktesting.NewFakePassiveClock(now)})
}

// NoName reports whether err is Register's "every claim was overwritten".
func NoName(err error) bool { return errors.Is(err, nodeclaim.ErrNoName) }

// Holding is the name id holds (the master first, then the lowest
// ordinal), "" for none.
func Holding(recs []naming.Record, id string) string {
	name, _ := naming.HeldBy(recs, id)
	return name
}
