package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// legacyResult is a MODEL of Aerostat 1.x: its query pattern (from the
// 1.x README, urbanairship/aerostat), replayed with the Go driver against the same
// embedded store and the same records. It is not 1.x's code.
type legacyResult struct {
	// Registration that refills a gap: is this instance registered (find
	// by instance_id), smallest gap sorted as strings, update without a
	// compare-and-set.
	RegisterGapMs  float64 `json:"register_gap_path_ms"`
	RegisterGapOps int     `json:"register_gap_path_queries"`
	// Registration without a gap: the same two reads, count of named
	// records, insert of <service>-<count> without a claim.
	RegisterCountMs  float64 `json:"register_count_path_ms"`
	RegisterCountOps int     `json:"register_count_path_queries"`
	// Inserts whose <service>-<count> name already existed (1.x's
	// collision defect; the unique index refused them here).
	CountCollisions int `json:"count_collisions"`
	// Server (aerostatd) pass: read every record, list every instance,
	// blank each record whose instance is not running.
	ServerPassMs     float64 `json:"server_pass_ms"`
	ServerPassWrites int     `json:"server_pass_writes"`
	ServerEC2Calls   int     `json:"server_pass_ec2_calls"`
	// Updater poll on every node: read every record.
	UpdaterReadMs float64 `json:"updater_read_ms"`
	UpdaterBytes  int64   `json:"updater_bytes_per_poll"`
}

func runLegacyModel(ctx context.Context, m *ledger.Mongo, ec2 cloud.Cloud, rng *rand.Rand, repeats int) (legacyResult, error) {
	var res legacyResult
	coll := m.Client().Database(m.Database()).Collection("servers")
	var gap, count, server, updater []time.Duration
	for i := range repeats {
		// The server blanks a dead instance's record; a new node refills it.
		var victim bson.M
		err := coll.FindOne(ctx, bson.D{{Key: "service", Value: service}, {Key: "instance_id", Value: bson.D{{Key: "$ne", Value: ""}}}},
			options.FindOne().SetSkip(int64(rng.IntN(100)))).Decode(&victim)
		if err != nil {
			return res, fmt.Errorf("picking a record to blank: %w", err)
		}
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "hostname", Value: victim["hostname"]}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "instance_id", Value: ""}, {Key: "ip", Value: ""}}}}); err != nil {
			return res, err
		}
		id := fmt.Sprintf("i-1x-gap-%d", i)
		t0 := time.Now()
		ops, _, err := legacyRegister(ctx, coll, id, "10.250.0.1", false)
		if err != nil {
			return res, err
		}
		gap = append(gap, time.Since(t0))
		res.RegisterGapOps = ops

		// No gap left: count named records and insert. (Churn may have
		// left gaps; the model then takes this path anyway, after the same
		// gap query, so its cost is that of a fleet without gaps.)
		id = fmt.Sprintf("i-1x-new-%d", i)
		t0 = time.Now()
		ops, collided, err := legacyRegister(ctx, coll, id, "10.250.0.2", true)
		if err != nil {
			return res, err
		}
		count = append(count, time.Since(t0))
		res.RegisterCountOps = ops
		if collided {
			res.CountCollisions++
		}

		t0 = time.Now()
		writes, calls, err := legacyServerPass(ctx, coll, ec2)
		if err != nil {
			return res, err
		}
		server = append(server, time.Since(t0))
		res.ServerPassWrites, res.ServerEC2Calls = writes, calls

		t0 = time.Now()
		n, err := legacyUpdaterRead(ctx, coll)
		if err != nil {
			return res, err
		}
		updater = append(updater, time.Since(t0))
		res.UpdaterBytes = n
	}
	res.RegisterGapMs = medianMs(gap)
	res.RegisterCountMs = medianMs(count)
	res.ServerPassMs = medianMs(server)
	res.UpdaterReadMs = medianMs(updater)
	return res, nil
}

// legacyRegister is the 1.x registrar's queries: returns how many it made
// and whether the counted name collided.
func legacyRegister(ctx context.Context, coll *mongo.Collection, id, ip string, noGap bool) (ops int, collided bool, err error) {
	ops++
	err = coll.FindOne(ctx, bson.D{{Key: "instance_id", Value: id}}).Err()
	if err == nil {
		return ops, false, nil // already registered
	}
	if err != mongo.ErrNoDocuments {
		return ops, false, err
	}
	ops++
	var g bson.M
	err = coll.FindOne(ctx, bson.D{{Key: "service", Value: service}, {Key: "instance_id", Value: ""}},
		options.FindOne().SetSort(bson.D{{Key: "hostname", Value: 1}})).Decode(&g) // string order: web-10 before web-2
	switch {
	case err == nil && !noGap:
		ops++
		_, err = coll.UpdateOne(ctx, bson.D{{Key: "hostname", Value: g["hostname"]}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "instance_id", Value: id}, {Key: "ip", Value: ip}}}})
		return ops, false, err
	case err != nil && err != mongo.ErrNoDocuments:
		return ops, false, err
	}
	ops++
	n, err := coll.CountDocuments(ctx, bson.D{{Key: "service", Value: service}, {Key: "instance_id", Value: bson.D{{Key: "$ne", Value: ""}}}})
	if err != nil {
		return ops, false, err
	}
	ops++
	_, err = coll.InsertOne(ctx, bson.D{{Key: "hostname", Value: naming.Hostname(service, naming.Iterative, naming.RoleNone, int(n))},
		{Key: "service", Value: service}, {Key: "service_type", Value: "iterative"}, {Key: "instance_id", Value: id},
		{Key: "ip", Value: ip}, {Key: "aliases", Value: bson.A{}}})
	if mongo.IsDuplicateKeyError(err) {
		return ops, true, nil
	}
	return ops, false, err
}

func legacyServerPass(ctx context.Context, coll *mongo.Collection, ec2 cloud.Cloud) (writes, calls int, err error) {
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		return 0, 0, err
	}
	var docs []bson.M
	if err := cur.All(ctx, &docs); err != nil {
		return 0, 0, err
	}
	reporter, _ := ec2.(cloud.APICallReporter)
	if reporter != nil {
		reporter.SetAPICallHook(func(cloud.APICall) { calls++ })
		defer reporter.SetAPICallHook(nil)
	}
	instances, err := ec2.List(ctx)
	if err != nil {
		return 0, calls, err
	}
	running := make(map[string]bool, len(instances))
	for _, in := range instances {
		running[in.ID] = in.State == naming.StateRunning
	}
	for _, d := range docs {
		id, _ := d["instance_id"].(string)
		if id == "" || running[id] || len(id) > 4 && id[:5] == "i-1x-" {
			continue // the model's own registrations have no instance
		}
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "hostname", Value: d["hostname"]}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "instance_id", Value: ""}, {Key: "ip", Value: ""}}}}); err != nil {
			return writes, calls, err
		}
		writes++
	}
	return writes, calls, nil
}

func legacyUpdaterRead(ctx context.Context, coll *mongo.Collection) (int64, error) {
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		return 0, err
	}
	defer func() { _ = cur.Close(ctx) }()
	var n int64
	for cur.Next(ctx) {
		n += int64(len(cur.Current))
	}
	return n, cur.Err()
}

func medianMs(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}

// legacyConvergence models 1.x spreading one change to every one of
// agents nodes: the aerostatd poll (for a dead instance) and each node's
// own updater poll are independent and uniform over their intervals.
type legacyConvergence struct {
	RegisterToFiles  dist `json:"register_to_every_file"`
	TerminateToFiles dist `json:"terminate_to_gone_from_every_file"`
}

func modelLegacyConvergence(agents int, serverPoll, clientPoll time.Duration, reg, serverPass, updaterRead time.Duration, seed uint64) legacyConvergence {
	rng := rand.New(rand.NewPCG(seed, 7))
	const samples = 20000
	regs := make([]time.Duration, samples)
	terms := make([]time.Duration, samples)
	for i := range samples {
		var worst time.Duration
		for range agents {
			worst = max(worst, time.Duration(rng.Int64N(int64(clientPoll))))
		}
		worst += updaterRead
		regs[i] = reg + worst
		terms[i] = time.Duration(rng.Int64N(int64(serverPoll))) + serverPass + worst
	}
	return legacyConvergence{RegisterToFiles: summarize(regs), TerminateToFiles: summarize(terms)}
}
