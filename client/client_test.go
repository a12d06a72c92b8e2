package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/client"
	"github.com/aerostat-io/aerostat/internal/fakeclock"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// newClient returns a writable ledger on a fresh database and a read-only
// client of it.
func newClient(t *testing.T, opts client.Options) (*ledger.Mongo, *client.Client) {
	t.Helper()
	db := ledgertest.Database(t)
	store := ledgertest.Open(t, ledger.Options{Database: db})
	opts.Database = db
	c, err := client.New(context.Background(), ledgertest.URI(t), opts)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return store, c
}

func TestLookups(t *testing.T) {
	ctx := context.Background()
	store, c := newClient(t, client.Options{})
	if err := seed(ctx, store); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Hostname(ctx, ""); !errors.Is(err, client.ErrNotFound) {
		t.Errorf(`Hostname(""): err = %v, want ErrNotFound (an empty id marks a gap)`, err)
	}
	if _, err := c.Master(ctx, "web"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf(`Master("web"): err = %v, want ErrNotFound`, err)
	}
	if ok, err := c.IsMaster(ctx, "db", ""); ok || err != nil {
		t.Errorf(`IsMaster("db", ""): %v, %v; want false, nil`, ok, err)
	}
	n, err := c.Name(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if n.State != client.Free || n.InstanceID != "" || n.IP != "" || n.UpdatedAt == nil || n.ClaimedAt != nil {
		t.Errorf("web-1 = %+v, want a free name with updated_at and no claimed_at", n)
	}
	m, err := c.Name(ctx, "db-slave-1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Role != client.RoleSlave || m.Ordinal != 1 || m.ServiceType != "masterful" || m.ClaimedAt == nil {
		t.Errorf("db-slave-1 = %+v, want a masterful slave 1 with claimed_at", m)
	}
}

// The client must not be able to write: agents and admin tools get
// read-only access.
func TestReadOnly(t *testing.T) {
	_, c := newClient(t, client.Options{})
	// Nothing in the API writes; check the type has no method that could.
	typ := reflect.TypeOf(c)
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		for _, verb := range []string{"Apply", "Set", "Put", "Delete", "Bind", "Release", "Claim", "Update", "Insert"} {
			if strings.HasPrefix(name, verb) {
				t.Errorf("Client has a writing method %s", name)
			}
		}
	}
}

func TestNamesSortNumerically(t *testing.T) {
	ctx := context.Background()
	store, c := newClient(t, client.Options{})
	if err := plan(ctx, store, "web", naming.Iterative, instances("i-0a00000000000000", "10.0.1.", 12)); err != nil {
		t.Fatal(err)
	}
	names, err := c.Names(ctx, client.Selector{Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range names {
		got = append(got, n.Hostname)
	}
	want := []string{"web-0", "web-1", "web-2", "web-3", "web-4", "web-5", "web-6", "web-7", "web-8", "web-9", "web-10", "web-11"}
	if !slices.Equal(got, want) {
		t.Errorf("names = %v, want %v", got, want)
	}
}

func TestJSONFieldNames(t *testing.T) {
	ctx := context.Background()
	store, c := newClient(t, client.Options{})
	if err := seed(ctx, store); err != nil {
		t.Fatal(err)
	}
	names, err := c.Names(ctx, client.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	if err := json.Unmarshal(b, &docs); err != nil {
		t.Fatal(err)
	}
	// 1.x fields, then Aerostat 2's; every record has all of them.
	want := []string{"hostname", "ip", "service", "service_type", "instance_id", "aliases",
		"state", "ordinal", "role", "updated_at", "rev"}
	for _, d := range docs {
		for _, k := range want {
			if _, ok := d[k]; !ok {
				t.Errorf("record %v has no field %q", d["hostname"], k)
			}
		}
		if _, ok := d["aliases"].([]any); !ok {
			t.Errorf("record %v: aliases = %#v, want an array", d["hostname"], d["aliases"])
		}
	}
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := fakeclock.New(time.Now())
	store, c := newClient(t, client.Options{Clock: clk, PollInterval: time.Second})
	web := instances("i-0a00000000000000", "10.0.1.", 2)
	if err := plan(ctx, store, "web", naming.Iterative, web); err != nil {
		t.Fatal(err)
	}
	if err := plan(ctx, store, "db", naming.Masterful, instances("i-0d00000000000000", "10.0.2.", 1)); err != nil {
		t.Fatal(err)
	}

	batches := make(chan []client.Event)
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(ctx, client.Selector{Service: "web"}, func(ev []client.Event) error {
			batches <- ev
			return nil
		})
	}()
	if got, want := summary(<-batches), "ADDED web-0 bound, ADDED web-1 bound"; got != want {
		t.Errorf("first batch = %q, want %q", got, want)
	}

	web[0].State = naming.StateTerminated
	web = append(web, instances("i-0a00000000000001", "10.0.1.1", 1)...)
	if err := plan(ctx, store, "web", naming.Iterative, web); err != nil {
		t.Fatal(err)
	}
	if err := plan(ctx, store, "db", naming.Masterful, instances("i-0d00000000000000", "10.0.2.", 2)); err != nil {
		t.Fatal(err)
	}
	clk.WaitArmed(t, time.Second) // Watch's poll ticker
	clk.Step(time.Second)
	// web-0's instance ended and the new one took the gap; the db change
	// is filtered out.
	ev := <-batches
	if got, want := summary(ev), "MODIFIED web-0 bound"; got != want {
		t.Fatalf("second batch = %q, want %q", got, want)
	}
	if got, want := ev[0].Name.InstanceID, web[2].ID; got != want {
		t.Errorf("web-0 instance = %s, want the new %s", got, want)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch after cancel = %v, want nil", err)
	}
}

func summary(events []client.Event) string {
	var parts []string
	for _, e := range events {
		parts = append(parts, string(e.Type)+" "+e.Name.Hostname+" "+string(e.Name.State))
	}
	return strings.Join(parts, ", ")
}

func TestWatchFirstReadError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Port 1 on loopback refuses connections; the driver may connect
	// lazily, so the error can come from New or from the first read.
	c, err := client.New(ctx, "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200", client.Options{})
	if err != nil {
		return
	}
	defer c.Close(ctx)
	err = c.Watch(ctx, client.Selector{}, func([]client.Event) error { return nil })
	if err == nil {
		t.Fatal("Watch on an unreachable server returned nil")
	}
}

// streamStore is the real ledger with a change stream the test drives:
// FerretDB has none, so the wake-ups stand in for a replica set's.
type streamStore struct {
	*ledger.Mongo
	wake chan struct{}
}

func (s streamStore) Watch(context.Context) (<-chan struct{}, error) { return s.wake, nil }

// TestWatchWokenByChangeStream: with a change stream, a write shows up on
// its wake-up, with no poll (the fake clock never steps); once the stream
// ends, Watch polls every PollInterval.
func TestWatchWokenByChangeStream(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := clocktesting.NewFakeClock(time.Now())
	db := ledgertest.Database(t)
	store := ledgertest.Open(t, ledger.Options{Database: db})
	web := instances("i-0a00000000000000", "10.0.1.", 1)
	if err := plan(ctx, store, "web", naming.Iterative, web); err != nil {
		t.Fatal(err)
	}
	wake := make(chan struct{})
	c := client.NewForStore(streamStore{store, wake}, client.Options{Clock: clk, PollInterval: time.Second})
	batches := make(chan []client.Event)
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(ctx, client.Selector{}, func(ev []client.Event) error {
			batches <- ev
			return nil
		})
	}()
	if got, want := summary(<-batches), "ADDED web-0 bound"; got != want {
		t.Errorf("first batch = %q, want %q", got, want)
	}
	web = append(web, instances("i-0a00000000000001", "10.0.1.1", 1)...)
	if err := plan(ctx, store, "web", naming.Iterative, web); err != nil {
		t.Fatal(err)
	}
	wake <- struct{}{}
	if got, want := summary(<-batches), "ADDED web-1 bound"; got != want {
		t.Errorf("batch after the wake-up = %q, want %q", got, want)
	}

	close(wake)
	web = append(web, instances("i-0a00000000000002", "10.0.1.2", 1)...)
	if err := plan(ctx, store, "web", naming.Iterative, web); err != nil {
		t.Fatal(err)
	}
	// The ticker is armed from the start; stepping it before Watch saw the
	// close would lose the tick, so step until a batch arrives.
	var ev []client.Event
	for ev == nil {
		select {
		case ev = <-batches:
		default:
			clk.Step(time.Second)
			runtime.Gosched()
		}
	}
	if got, want := summary(ev), "ADDED web-2 bound"; got != want {
		t.Errorf("polled batch after the stream ended = %q, want %q", got, want)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch after cancel = %v, want nil", err)
	}
}
