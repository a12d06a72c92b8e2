package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// policiesCollection holds the naming policy in force for each service,
// next to the records it governs, so that every writer applies the same
// one: the controller publishes what its NamingService or its flags say,
// and register, promote, adopt and the demo read it. 1.x ignores it.
const policiesCollection = "policies"

// DefaultHoldBack is the hold-back of a service with no stored policy:
// how long a released name is kept from a different instance.
const DefaultHoldBack = 3 * time.Minute

// Policy is one service's stored naming policy.
type Policy struct {
	Service string `bson:"_id"`
	// Reap is the release policy; HoldBack is what nodes registering
	// themselves must honour too.
	HoldBack           time.Duration `bson:"hold_back"`
	StoppedGracePeriod time.Duration `bson:"stopped_grace_period"`
	GracePeriod        time.Duration `bson:"grace_period"`
	MaxReleaseFraction float64       `bson:"max_release_fraction"`
	// Source says who set it: "NamingService web", "controller --standalone".
	Source    string    `bson:"source"`
	UpdatedAt time.Time `bson:"updated_at"`
}

// PolicyOf is the stored form of a service's reap policy.
func PolicyOf(service string, r naming.ReapPolicy, source string) Policy {
	return Policy{Service: service, HoldBack: r.HoldBack, StoppedGracePeriod: r.StoppedGracePeriod,
		GracePeriod: r.GracePeriod, MaxReleaseFraction: r.MaxReleaseFraction, Source: source}
}

// Reap is the planner's form of p.
func (p Policy) Reap() naming.ReapPolicy {
	return naming.ReapPolicy{HoldBack: p.HoldBack, StoppedGracePeriod: p.StoppedGracePeriod,
		GracePeriod: p.GracePeriod, MaxReleaseFraction: p.MaxReleaseFraction}
}

// Same reports whether p and o set the same policy (source and time aside).
func (p Policy) Same(o Policy) bool {
	p.Source, p.UpdatedAt, o.Source, o.UpdatedAt = "", time.Time{}, "", time.Time{}
	return p == o
}

// PolicyStore keeps one naming policy per service.
//
// Error contract: Policy returns found false and a nil error when the
// service has none stored; any error means the store could not be read or
// written, and nothing is half-written (a policy is one document).
type PolicyStore interface {
	Policy(ctx context.Context, service string) (p Policy, found bool, err error)
	PutPolicy(ctx context.Context, p Policy) error
}

var _ PolicyStore = (*Mongo)(nil)

func (m *Mongo) policies() *mongo.Collection {
	return m.client.Database(m.opts.Database).Collection(policiesCollection)
}

// PutPolicy implements PolicyStore: it replaces the service's policy,
// stamped with the ledger's clock.
func (m *Mongo) PutPolicy(ctx context.Context, p Policy) error {
	if m.opts.ReadOnly {
		return fmt.Errorf("writing the policy of service %s: ledger opened read-only", p.Service)
	}
	if err := naming.ValidateLabel("service", p.Service); err != nil {
		return fmt.Errorf("writing a policy: %w", err)
	}
	if p.HoldBack < 0 || p.StoppedGracePeriod < 0 || p.GracePeriod < 0 {
		return fmt.Errorf("writing the policy of service %s: durations must not be negative (holdBack %v, stoppedGracePeriod %v, gracePeriod %v)",
			p.Service, p.HoldBack, p.StoppedGracePeriod, p.GracePeriod)
	}
	p.UpdatedAt = m.opts.Clock.Now().UTC()
	_, err := m.policies().ReplaceOne(ctx, bson.D{{Key: "_id", Value: p.Service}}, p, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("writing the policy of service %s: %w", p.Service, err)
	}
	return nil
}

// Policy implements PolicyStore.
func (m *Mongo) Policy(ctx context.Context, service string) (Policy, bool, error) {
	var p Policy
	err := m.policies().FindOne(ctx, bson.D{{Key: "_id", Value: service}}).Decode(&p)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Policy{}, false, nil
	}
	if err != nil {
		return Policy{}, false, fmt.Errorf("reading the policy of service %s: %w", service, err)
	}
	return p, true, nil
}

// Policies returns every stored policy.
func (m *Mongo) Policies(ctx context.Context) ([]Policy, error) {
	cur, err := m.policies().Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("reading policies: %w", err)
	}
	var out []Policy
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("reading policies: %w", err)
	}
	return out, nil
}
