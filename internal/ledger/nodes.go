package ledger

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// nodesCollection holds one document a controller replica: the agents
// that replica's feed serves and the ledger rev each one's hosts file
// holds. Every replica serves the feed, so no replica sees every agent;
// the documents let each one report the whole fleet. 1.x ignores it.
const nodesCollection = "feed_nodes"

// NodeReport is one replica's view of the agents it serves.
type NodeReport struct {
	Replica string    `bson:"_id"`
	At      time.Time `bson:"at"`
	// Rev is the ledger rev the replica's feed serves.
	Rev   int64     `bson:"rev"`
	Nodes []NodeRow `bson:"nodes"`
}

// NodeRow is one agent: the ledger rev of its hosts file (-1 unknown), when
// it first lacked a served change (nil: current) and when it last asked.
type NodeRow struct {
	Name       string     `bson:"n"`
	Rev        int64      `bson:"r"`
	StaleSince *time.Time `bson:"s,omitempty"`
	LastSeen   time.Time  `bson:"l"`
}

// PutNodeReport replaces the replica's report.
func (m *Mongo) PutNodeReport(ctx context.Context, r NodeReport) error {
	_, err := m.client.Database(m.opts.Database).Collection(nodesCollection).
		ReplaceOne(ctx, bson.D{{Key: "_id", Value: r.Replica}}, r, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("writing node report of %s: %w", r.Replica, err)
	}
	return nil
}

// NodeReports returns the reports written since notBefore, and deletes
// older ones (replicas that are gone).
func (m *Mongo) NodeReports(ctx context.Context, notBefore time.Time) ([]NodeReport, error) {
	coll := m.client.Database(m.opts.Database).Collection(nodesCollection)
	if _, err := coll.DeleteMany(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: notBefore}}}}); err != nil {
		return nil, fmt.Errorf("deleting old node reports: %w", err)
	}
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("reading node reports: %w", err)
	}
	var out []NodeReport
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("reading node reports: %w", err)
	}
	return out, nil
}
