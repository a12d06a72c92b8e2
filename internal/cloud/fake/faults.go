package fake

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Fault is what one call is made to do instead of (or before) its work.
type Fault struct {
	// Code and Status describe an EC2 error; empty Code means no error.
	Code    string
	Message string
	Status  int
	// Empty makes a DescribeInstances page come back with no instances and
	// no NextToken, as a listing in the wrong region does.
	Empty bool
}

// EC2 error codes the faults produce.
const (
	CodeThrottled   = "RequestLimitExceeded"
	CodeInternal    = "InternalError"
	CodeUnavailable = "Unavailable"
	CodeNotFound    = "InvalidInstanceID.NotFound"
)

// Faults decides which calls fail and how. The zero value injects nothing;
// it is safe for concurrent use. Faults are consumed in this order: latency,
// throttle-next, fail-next, not-found-next, fail-on-page, throttle fraction,
// empty listing.
type Faults struct {
	mu           sync.Mutex
	latency      time.Duration
	throttleNext int
	throttleFrac float64
	failNext     int
	failStatus   int
	notFoundNext int
	failPage     int
	pageFault    Fault
	empty        bool
	rnd          *rand.Rand
	injected     int
}

// ThrottleNext makes the next n calls fail with RequestLimitExceeded (HTTP 503).
func (f *Faults) ThrottleNext(n int) { f.with(func() { f.throttleNext = n }) }

// ThrottleFraction throttles each call with probability p, drawn from a
// generator seeded with seed so runs repeat.
func (f *Faults) ThrottleFraction(p float64, seed uint64) {
	f.with(func() { f.throttleFrac, f.rnd = p, rand.New(rand.NewPCG(seed, seed)) })
}

// FailNext makes the next n calls fail with the given 5xx status
// (500 InternalError, otherwise Unavailable).
func (f *Faults) FailNext(n, status int) { f.with(func() { f.failNext, f.failStatus = n, status }) }

// NotFoundNext makes the next n calls fail with InvalidInstanceID.NotFound
// (HTTP 400), EC2's eventual-consistency error for a just-launched instance.
func (f *Faults) NotFoundNext(n int) { f.with(func() { f.notFoundNext = n }) }

// FailOnPage makes every request for page k (1-based) of a DescribeInstances
// listing fail with HTTP 500 until Reset, so retries fail too and the
// listing stops there. k <= 0 turns it off.
func (f *Faults) FailOnPage(k int) {
	f.with(func() {
		f.failPage = k
		f.pageFault = Fault{Code: CodeInternal, Message: "An internal error has occurred", Status: http.StatusInternalServerError}
	})
}

// ThrottleOnPage makes every request for page k (1-based) of a
// DescribeInstances listing fail with RequestLimitExceeded until Reset: a
// throttling storm that starts mid-pagination. k <= 0 turns it off.
func (f *Faults) ThrottleOnPage(k int) { f.with(func() { f.failPage, f.pageFault = k, throttled() }) }

// SetLatency delays every call by d (the wait ends early if the caller goes away).
func (f *Faults) SetLatency(d time.Duration) { f.with(func() { f.latency = d }) }

// EmptyListing makes DescribeInstances return no instances, as when the
// client looks in the wrong region or account.
func (f *Faults) EmptyListing(on bool) { f.with(func() { f.empty = on }) }

// Injected is the number of faults injected since the last Reset
// (latency not counted).
func (f *Faults) Injected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

// ResetFaults turns all faults off.
func (f *Faults) ResetFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency, f.throttleNext, f.throttleFrac, f.rnd = 0, 0, 0, nil
	f.failNext, f.failStatus, f.notFoundNext = 0, 0, 0
	f.failPage, f.pageFault, f.empty, f.injected = 0, Fault{}, false, 0
}

func (f *Faults) with(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// next decides the fault for one call; page is the 1-based page of a
// DescribeInstances listing, 0 for other actions.
func (f *Faults) next(page int) (Fault, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fault := f.decide(page)
	if fault.Code != "" || fault.Empty {
		f.injected++
	}
	return fault, f.latency
}

func (f *Faults) decide(page int) Fault {
	switch {
	case f.throttleNext > 0:
		f.throttleNext--
		return throttled()
	case f.failNext > 0:
		f.failNext--
		if f.failStatus == http.StatusInternalServerError {
			return Fault{Code: CodeInternal, Message: "An internal error has occurred", Status: f.failStatus}
		}
		return Fault{Code: CodeUnavailable, Message: "The service is unavailable", Status: f.failStatus}
	case f.notFoundNext > 0:
		f.notFoundNext--
		return Fault{Code: CodeNotFound, Message: "The instance ID does not exist", Status: http.StatusBadRequest}
	case page > 0 && page == f.failPage:
		return f.pageFault
	case f.throttleFrac > 0 && f.rnd.Float64() < f.throttleFrac:
		return throttled()
	case page > 0 && f.empty:
		return Fault{Empty: true}
	}
	return Fault{}
}

func throttled() Fault {
	return Fault{Code: CodeThrottled, Message: "Request limit exceeded.", Status: http.StatusServiceUnavailable}
}
