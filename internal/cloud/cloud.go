// Package cloud observes machines: the Cloud interface, its EC2 adapter, a
// wire-level fake EC2 server for tests and a simulated fleet for the demo.
package cloud

import (
	"context"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// Filter narrows a listing, as EC2's DescribeInstances Filter.N does
// (e.g. Name "tag:aerostat:service", Values ["web"]).
type Filter struct {
	Name   string
	Values []string
}

// Cloud lists instances.
//
// Error contract: List returns a nil error only for a complete listing (all
// pages read). On throttling, a failed page or a cancelled context it returns
// the instances read so far together with a non-nil error; callers must then
// treat absent instances as unknown, never as gone. Throttling errors satisfy
// IsThrottled.
type Cloud interface {
	List(ctx context.Context, filters ...Filter) ([]naming.Instance, error)
}
