package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// attestationsCollection binds each attested instance to the nonce of its
// first attested request (internal/attest). 1.x ignores it.
const attestationsCollection = "attestations"

// Attestation is an instance's binding: the SHA-256 of the nonce its
// first attested request carried (hex; never the nonce, which ledger
// readers could otherwise replay) and the newest pendingTime seen.
type Attestation struct {
	InstanceID  string    `bson:"_id"`
	NonceHash   string    `bson:"nonce"`
	PendingTime time.Time `bson:"pending"`
	FirstSeen   time.Time `bson:"first"`
}

// AttestationStore keeps the bindings.
//
// Error contract: an error means the store could not be read or written;
// nothing is half-written (a binding is one document).
type AttestationStore interface {
	// BindAttestation stores a if the instance has no binding yet and
	// returns the binding stored: a on first use, else the earlier one,
	// unchanged (the caller compares the nonce).
	BindAttestation(ctx context.Context, a Attestation) (Attestation, error)
	// AdvanceAttestation raises the stored pendingTime (the instance was
	// stopped and started) where the nonce matches.
	AdvanceAttestation(ctx context.Context, instanceID, nonceHash string, pending time.Time) error
}

var _ AttestationStore = (*Mongo)(nil)

func (m *Mongo) attestations() *mongo.Collection {
	return m.client.Database(m.opts.Database).Collection(attestationsCollection)
}

// BindAttestation implements AttestationStore; FirstSeen is the ledger's clock.
func (m *Mongo) BindAttestation(ctx context.Context, a Attestation) (Attestation, error) {
	if m.opts.ReadOnly {
		return Attestation{}, fmt.Errorf("binding instance %s: ledger opened read-only", a.InstanceID)
	}
	a.FirstSeen = m.opts.Clock.Now().UTC()
	filter := bson.D{{Key: "_id", Value: a.InstanceID}}
	update := bson.D{{Key: "$setOnInsert", Value: bson.D{
		{Key: "nonce", Value: a.NonceHash}, {Key: "pending", Value: a.PendingTime}, {Key: "first", Value: a.FirstSeen},
	}}}
	opts := options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)
	var stored Attestation
	err := m.attestations().FindOneAndUpdate(ctx, filter, update, opts).Decode(&stored)
	if mongo.IsDuplicateKeyError(err) {
		// Two first requests raced; the other inserted: read its binding.
		err = m.attestations().FindOne(ctx, filter).Decode(&stored)
	}
	if err != nil {
		return Attestation{}, fmt.Errorf("binding instance %s: %w", a.InstanceID, err)
	}
	return stored, nil
}

// AdvanceAttestation implements AttestationStore.
func (m *Mongo) AdvanceAttestation(ctx context.Context, instanceID, nonceHash string, pending time.Time) error {
	if m.opts.ReadOnly {
		return fmt.Errorf("updating instance %s's binding: ledger opened read-only", instanceID)
	}
	_, err := m.attestations().UpdateOne(ctx,
		bson.D{{Key: "_id", Value: instanceID}, {Key: "nonce", Value: nonceHash}, {Key: "pending", Value: bson.D{{Key: "$lt", Value: pending}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "pending", Value: pending}}}})
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("updating instance %s's binding: %w", instanceID, err)
	}
	return nil
}
