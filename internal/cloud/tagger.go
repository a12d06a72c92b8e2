package cloud

import (
	"context"
	"time"
)

// Tagger writes tags on instances (e.g. the assigned Name).
//
// Error contract: a nil error means every instance got every tag. On error
// some instances may be tagged already; tags are idempotent, so callers
// simply retry later. Throttling errors satisfy IsThrottled.
type Tagger interface {
	Tag(ctx context.Context, ids []string, tags map[string]string) error
}

// Results of a call, as metric label values.
const (
	ResultSuccess   = "success"
	ResultThrottled = "throttled"
	ResultError     = "error"
)

// APICall describes one HTTP call to the cloud API (one page or one retry).
type APICall struct {
	Operation string // e.g. "DescribeInstances"
	Result    string // ResultSuccess, ResultThrottled or ResultError
	// BudgetWait is how long the call waited for the client-side budget
	// (throttling back-off included).
	BudgetWait time.Duration
	// At is when the budget let the call go.
	At time.Time
}

// BudgetReporter is a Cloud with a client-side call budget; Instrument
// exports it.
type BudgetReporter interface {
	// BudgetLimit is the calls a second allowed (+Inf: unlimited).
	BudgetLimit() float64
	// ThrottleBackoff is how much longer calls are held back because EC2
	// throttled the last ones.
	ThrottleBackoff() time.Duration
}

// APICallReporter is a Cloud that can report each API call it makes,
// retries included; Instrument uses it for per-call metrics.
type APICallReporter interface {
	SetAPICallHook(fn func(APICall))
}
