// Package fake simulates EC2 for tests, benchmarks and the demo: Fleet is a
// thread-safe set of instances that also implements cloud.Cloud in-process,
// Server serves a Fleet over the real EC2 Query API so the SDK-based adapter
// is tested on the wire, and IMDS fakes the instance metadata service.
package fake

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/aws/smithy-go"
	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// DefaultPageSize is the page size of in-process listings, EC2's MaxResults
// limit, so calls per pass match the wire.
const DefaultPageSize = 1000

// Fleet is a simulated set of EC2 instances. Instances keep launch order
// (listings page through them in that order). Removed instances are gone
// from listings, as terminated instances are after about an hour in EC2.
//
// Fleet implements cloud.Cloud: List pages through the matching instances
// DefaultPageSize at a time, counts each page as a call and applies the
// embedded Faults per page (throttling and errors return the instances of
// the pages read so far with the error, no retries).
type Fleet struct {
	Faults

	clock clock.PassiveClock

	mu        sync.Mutex
	seq       int
	order     []string
	instances map[string]*entry
	calls     int
	hook      func(cloud.APICall)
	watchers  []func(StateChange)
}

// StateChange is one instance entering a state, as EC2 reports it in an
// "EC2 Instance State-change Notification".
type StateChange struct {
	ID    string
	State naming.InstanceState
	At    time.Time
}

// Watch calls fn for every state change from now on (launches as running,
// Terminate, Stop, Start, SetState), after the change is visible to
// listings, outside the fleet's lock. It is how the fake SQS queue hears
// of launches and terminations.
func (f *Fleet) Watch(fn func(StateChange)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watchers = append(f.watchers, fn)
}

func (f *Fleet) notify(ids []string, state naming.InstanceState) {
	f.mu.Lock()
	ws := slices.Clone(f.watchers)
	f.mu.Unlock()
	if len(ws) == 0 {
		return
	}
	now := f.clock.Now().UTC()
	for _, id := range ids {
		for _, fn := range ws {
			fn(StateChange{ID: id, State: state, At: now})
		}
	}
}

type entry struct {
	naming.Instance
	reservation string
}

// NewFleet returns an empty fleet whose launch times come from clk.
func NewFleet(clk clock.PassiveClock) *Fleet {
	return &Fleet{clock: clk, instances: map[string]*entry{}}
}

// Launch adds n running instances with the given tags (copied) and returns
// their ids. All n share one reservation, as one RunInstances call does.
func (f *Fleet) Launch(n int, tags map[string]string) []string {
	ids := f.launch(n, tags)
	f.notify(ids, naming.StateRunning)
	return ids
}

func (f *Fleet) launch(n int, tags map[string]string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now().UTC().Truncate(time.Millisecond)
	ids := make([]string, 0, n)
	f.seq++
	res := fmt.Sprintf("r-%017x", f.seq)
	for range n {
		f.seq++
		id := fmt.Sprintf("i-%017x", f.seq*0x9e3779b1%(1<<60))
		f.instances[id] = &entry{reservation: res, Instance: naming.Instance{
			ID:         id,
			PrivateIP:  ipFor(f.seq),
			State:      naming.StateRunning,
			LaunchTime: now,
			Tags:       maps.Clone(tags),
		}}
		if f.instances[id].Tags == nil {
			f.instances[id].Tags = map[string]string{}
		}
		f.order = append(f.order, id)
		ids = append(ids, id)
	}
	return ids
}

// ipFor spreads sequence numbers over 10.0.0.0/8, skipping .0 and .255.
func ipFor(seq int) string {
	n := uint32(seq/254)<<8 | uint32(seq%254+1)
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}).String()
}

// SetState sets the state of one instance.
func (f *Fleet) SetState(id string, state naming.InstanceState) error {
	if _, ok := stateCodes[state]; !ok {
		return fmt.Errorf("setting state of %s: unknown state %q", id, state)
	}
	return f.setAll([]string{id}, state)
}

// Terminate marks instances terminated (they stay listed until Remove).
func (f *Fleet) Terminate(ids ...string) error { return f.setAll(ids, naming.StateTerminated) }

// Stop marks instances stopped.
func (f *Fleet) Stop(ids ...string) error { return f.setAll(ids, naming.StateStopped) }

// Start marks instances running.
func (f *Fleet) Start(ids ...string) error { return f.setAll(ids, naming.StateRunning) }

func (f *Fleet) setAll(ids []string, s naming.InstanceState) error {
	if err := f.update(ids, func(e *entry) { e.State = s }); err != nil {
		return err
	}
	f.notify(ids, s)
	return nil
}

// Remove drops instances from the fleet; unknown ids are ignored.
func (f *Fleet) Remove(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	gone := map[string]bool{}
	for _, id := range ids {
		if _, ok := f.instances[id]; ok {
			gone[id] = true
			delete(f.instances, id)
		}
	}
	if len(gone) == 0 {
		return
	}
	kept := f.order[:0]
	for _, id := range f.order {
		if !gone[id] {
			kept = append(kept, id)
		}
	}
	f.order = kept
}

// Tag sets tags on instances, as CreateTags does.
func (f *Fleet) Tag(_ context.Context, ids []string, tags map[string]string) error {
	return f.update(ids, func(e *entry) { maps.Copy(e.Tags, tags) })
}

// update applies fn to every id, or to none if one is unknown.
func (f *Fleet) update(ids []string, fn func(*entry)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if f.instances[id] == nil {
			return &smithy.GenericAPIError{Code: CodeNotFound, Message: fmt.Sprintf("The instance ID '%s' does not exist", id)}
		}
	}
	for _, id := range ids {
		fn(f.instances[id])
	}
	return nil
}

// Instance returns a copy of one instance.
func (f *Fleet) Instance(id string) (naming.Instance, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.instances[id]
	if !ok {
		return naming.Instance{}, false
	}
	return clone(e.Instance), true
}

// Instances returns copies of all instances in launch order.
func (f *Fleet) Instances() []naming.Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]naming.Instance, 0, len(f.order))
	for _, id := range f.order {
		out = append(out, clone(f.instances[id].Instance))
	}
	return out
}

// Len is the number of instances.
func (f *Fleet) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.order)
}

// Calls is the number of in-process List pages served since the last Reset.
func (f *Fleet) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Reset turns faults off and zeroes the call counter; instances stay.
func (f *Fleet) Reset() {
	f.ResetFaults()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = 0
}

// SetAPICallHook implements cloud.APICallReporter: fn is called once per page.
func (f *Fleet) SetAPICallHook(fn func(cloud.APICall)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = fn
}

// List implements cloud.Cloud in-process.
func (f *Fleet) List(ctx context.Context, filters ...cloud.Filter) ([]naming.Instance, error) {
	if err := checkFilters(filters); err != nil {
		return nil, fmt.Errorf("describing instances: %w", &smithy.GenericAPIError{Code: "InvalidParameterValue", Message: err.Error()})
	}
	var out []naming.Instance
	for page := 1; ; page++ {
		items, more, err := f.listPage(ctx, page, filters)
		out = append(out, items...)
		if err != nil {
			return out, fmt.Errorf("describing instances (page %d): %w", page, err)
		}
		if !more {
			return out, nil
		}
	}
}

func (f *Fleet) listPage(ctx context.Context, page int, filters []cloud.Filter) ([]naming.Instance, bool, error) {
	fault, latency := f.next(page)
	if err := sleep(ctx, latency); err != nil {
		return nil, false, err
	}
	f.mu.Lock()
	f.calls++
	hook := f.hook
	f.mu.Unlock()
	if fault.Code != "" {
		err := &smithy.GenericAPIError{Code: fault.Code, Message: fault.Message}
		if hook != nil {
			hook(cloud.APICall{Operation: "DescribeInstances", Result: cloud.ResultOf(err)})
		}
		return nil, false, err
	}
	if hook != nil {
		hook(cloud.APICall{Operation: "DescribeInstances", Result: cloud.ResultSuccess})
	}
	if fault.Empty {
		return nil, false, nil
	}
	items, next := f.page(filters, (page-1)*DefaultPageSize, DefaultPageSize)
	return items, next >= 0, nil
}

// page returns up to limit matching instances starting at the offset-th
// match, and the offset of the next page or -1 at the end.
func (f *Fleet) page(filters []cloud.Filter, offset, limit int) ([]naming.Instance, int) {
	items, next := f.pageEntries(filters, offset, limit)
	out := make([]naming.Instance, len(items))
	for i, e := range items {
		out[i] = e.Instance
	}
	return out, next
}

// pageEntries is page with reservation ids; entries are copies.
func (f *Fleet) pageEntries(filters []cloud.Filter, offset, limit int) ([]entry, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []entry
	seen := 0
	for _, id := range f.order {
		e := f.instances[id]
		if !matches(&e.Instance, filters) {
			continue
		}
		if seen >= offset {
			if limit > 0 && len(out) == limit {
				return out, seen
			}
			out = append(out, entry{Instance: clone(e.Instance), reservation: e.reservation})
		}
		seen++
	}
	return out, -1
}

func clone(in naming.Instance) naming.Instance {
	in.Tags = maps.Clone(in.Tags)
	return in
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
