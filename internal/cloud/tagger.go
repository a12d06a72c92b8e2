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
	// BudgetWait is how long the call waited for the client-side budget.
	BudgetWait time.Duration
}

// APICallReporter is a Cloud that can report each API call it makes,
// retries included; Instrument uses it for per-call metrics.
type APICallReporter interface {
	SetAPICallHook(fn func(APICall))
}
