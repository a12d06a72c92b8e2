package reliability

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// legacyClient is a 1.x client registering the 1.x way, with no
// compare-and-set: refill any gap it finds by hostname alone, else insert
// <service>-<count of documents>.
type legacyClient struct {
	servers *mongo.Collection
	// What the 1.x writes did.
	inserted, refused, refilled atomic.Int64

	mu   sync.Mutex
	took map[string]bool // hostnames refilled by hostname alone
	// stole counts, per instance, the names a refill overwrote after that
	// instance had claimed the gap the 1.x client read.
	stole map[string]int
}

func (c *legacyClient) register(ctx context.Context, service, id, ip string) error {
	var gap bson.M
	err := c.servers.FindOne(ctx, bson.M{"service": service, "instance_id": ""}).Decode(&gap)
	if err == nil {
		// The race 1.x had: the gap may have been filled since the read.
		// 1.x's update by hostname; the pre-image (same write, its reply
		// only) says whose claim it overwrote.
		var before bson.M
		err = c.servers.FindOneAndUpdate(ctx, bson.M{"hostname": gap["hostname"]},
			bson.M{"$set": bson.M{"instance_id": id, "ip": ip}}).Decode(&before)
		if err == nil {
			c.refilled.Add(1)
			c.mu.Lock()
			c.took[fmt.Sprint(gap["hostname"])] = true
			if victim, _ := before["instance_id"].(string); victim != "" {
				c.stole[victim]++
			}
			c.mu.Unlock()
		}
		return err
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return err
	}
	n, err := c.servers.CountDocuments(ctx, bson.M{"service": service})
	if err != nil {
		return err
	}
	_, err = c.servers.InsertOne(ctx, bson.M{"hostname": fmt.Sprintf("%s-%d", service, n), "ip": ip, "service": service,
		"service_type": "iterative", "instance_id": id, "aliases": bson.A{}})
	switch {
	case mongo.IsDuplicateKeyError(err):
		c.refused.Add(1) // the unique index stops the duplicate; 1.x crashed here
		return nil
	case err == nil:
		c.inserted.Add(1)
	}
	return err
}

// claimRounds is how many claim-then-read-back rounds a registration
// makes (nodeclaim's maxRounds) before it reports no name.
const claimRounds = 3

// progress counts registrations that returned and closes mark k once k
// steps of them have.
type progress struct {
	done  atomic.Int64
	step  int64
	marks []chan struct{}
}

func newProgress(step, marks int) *progress {
	p := &progress{step: int64(step), marks: make([]chan struct{}, marks+1)}
	for k := range p.marks {
		p.marks[k] = make(chan struct{})
	}
	close(p.marks[0])
	return p
}

func (p *progress) add() {
	if n := p.done.Add(1); n%p.step == 0 && n/p.step < int64(len(p.marks)) {
		close(p.marks[n/p.step])
	}
}

// at is closed once k steps of registrations returned (never past the
// last mark).
func (p *progress) at(k int) <-chan struct{} {
	if k >= len(p.marks) {
		return nil
	}
	return p.marks[k]
}

// TestRacingRegistrationsControllerAnd1xClients: 100 nodes register at
// once through the compare-and-set claim, while the standalone controller
// runs passes over the same service and ten 1.x clients write raw
// documents (refill a gap by hostname, or count-then-insert). No hostname
// is ever held by two documents, no two registrations are told one name,
// and after the next pass every running instance holds exactly one name.
func TestRacingRegistrationsControllerAnd1xClients(t *testing.T) {
	const nodes, legacy = 100, 10
	ctx := context.Background()
	w := newWorld(t)
	servers := w.store.Client().Database(w.db).Collection("servers")
	// 1.x history: three gaps left by dead instances.
	for i := range 3 {
		if _, err := servers.InsertOne(ctx, bson.M{"hostname": fmt.Sprintf("web-%d", i), "ip": "", "service": "web",
			"service_type": "iterative", "instance_id": "", "aliases": bson.A{}}); err != nil {
			t.Fatal(err)
		}
	}
	ids := w.launch(nodes, "web", "")
	oldIDs := w.launch(legacy, "web", "")
	ipOf := func(id string) string { in, _ := w.fleet.Instance(id); return in.PrivateIP }
	sa := w.standalone(w.store)
	lc := &legacyClient{servers: servers, took: map[string]bool{}, stole: map[string]int{}}
	// Events, not timers, spread the writers over the registrations' run:
	// 1.x client i starts once i tenths of the nodes have registered, so
	// its writes land between compare-and-set writes, not before them,
	// and the controller passes each time another tenth has.
	prog := newProgress(nodes/legacy, legacy)

	stop := make(chan struct{})
	var (
		passes, passErrs atomic.Int64
		ctrlDone         = make(chan struct{})
	)
	go func() { // the controller, a pass per tenth of the nodes, until they are done
		defer close(ctrlDone)
		for k := 1; ; k++ {
			select {
			case <-stop:
				return
			case <-prog.at(k):
			}
			if _, err := sa.Pass(ctx); err != nil {
				passErrs.Add(1)
				if !errors.Is(err, ledger.ErrConflict) {
					t.Errorf("controller pass: %v", err)
				}
			}
			passes.Add(1)
		}
	}()
	var wg sync.WaitGroup
	told := make([]string, nodes)
	noName := make([]bool, nodes)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer prog.add()
			name, err := Register(ctx, w.store, "web", naming.Iterative, id, ipOf(id), "", w.clock.Now())
			switch {
			case NoName(err):
				noName[i] = true
			case err != nil:
				t.Errorf("register %s: %v", id, err)
			}
			told[i] = name
		}()
	}
	for i, id := range oldIDs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-prog.at(i)
			if err := lc.register(ctx, "web", id, ipOf(id)); err != nil {
				t.Errorf("1.x register %s: %v", id, err)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-ctrlDone

	// Among the compare-and-set writers a name is never told twice. A
	// node told no name must have lost every round's claim to a 1.x
	// refill (1.x's own race, which Aerostat cannot stop); anything else
	// is a bug.
	byName := map[string]string{}
	lost := 0
	for i, name := range told {
		if name == "" {
			if !noName[i] || lc.stole[ids[i]] < claimRounds {
				t.Errorf("node %s was told no name (no-name error %v) and 1.x refills overwrote %d of its %d claims",
					ids[i], noName[i], lc.stole[ids[i]], claimRounds)
			}
			lost++
			continue
		}
		if other, dup := byName[name]; dup {
			t.Errorf("%s told to both %s and %s", name, other, ids[i])
		}
		byName[name] = ids[i]
	}
	w.checkRaw()

	// The next pass repairs what the 1.x writes did: an instance with two
	// names keeps the lowest, a node whose gap a 1.x client took gets a
	// new name.
	if _, err := sa.Pass(ctx); err != nil {
		t.Fatalf("pass after the race: %v", err)
	}
	w.checkRaw()
	w.checkSettled()
	sum, err := sa.Pass(ctx)
	if err != nil || sum.Changes != 0 {
		t.Errorf("second pass after the race: %d changes, %v; want a converged ledger", sum.Changes, err)
	}
	final := w.bound()
	moved := 0
	for name, id := range byName {
		if final[name] == id {
			continue
		}
		moved++
		// Only a 1.x overwrite (no compare-and-set) may take a name a node
		// was told; Aerostat's own writers never do.
		if !lc.took[name] {
			t.Errorf("%s was told to %s and is now held by %q, and no 1.x client overwrote it", name, id, final[name])
		}
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for h := range final {
			if !yield(h) {
				return
			}
		}
	})
	t.Logf("%d nodes, %d 1.x clients (%d inserted, %d refused by the unique index, %d gap refills without compare-and-set); "+
		"%d controller passes (%d lost a compare-and-set); %d names taken from nodes by 1.x refills and repaired; %d nodes told no name; %d names bound",
		nodes, legacy, lc.inserted.Load(), lc.refused.Load(), lc.refilled.Load(), passes.Load(), passErrs.Load(), moved, lost, len(names))
}
