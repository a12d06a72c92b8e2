package cloud

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// SharedOptions configure NewShared.
type SharedOptions struct {
	// TagKey is the tag whose per-value listings are shared (e.g.
	// "aerostat:service"): a listing filtered by tag:<TagKey>=v is answered
	// from one listing of every instance carrying TagKey.
	TagKey string
	// MaxAge is how long one sweep answers (default 5 s; keep it under the
	// poll interval so every poll sees a fresh listing).
	MaxAge time.Duration
	Clock  clock.PassiveClock
}

// Shared is a Cloud that answers the per-service listings of one poll from
// a single sweep: N services of a 10,000-instance fleet cost 10 paginated
// DescribeInstances calls a poll, not N listings. Other filters go to the
// underlying Cloud. Safe for concurrent use; concurrent callers wait for
// one sweep.
type Shared struct {
	c    Cloud
	opts SharedOptions

	mu    sync.Mutex // held during a sweep, so callers share it
	at    time.Time
	all   []naming.Instance
	err   error
	valid bool
}

// NewShared returns a Shared over c.
func NewShared(c Cloud, opts SharedOptions) *Shared {
	if opts.MaxAge <= 0 {
		opts.MaxAge = 5 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Shared{c: c, opts: opts}
}

// List implements Cloud. A failed or partial sweep is shared too, for
// MaxAge: every service then sees "unknown", and a throttled EC2 is not
// asked again once per service.
func (s *Shared) List(ctx context.Context, filters ...Filter) ([]naming.Instance, error) {
	values, ok := s.shareable(filters)
	if !ok {
		return s.c.List(ctx, filters...)
	}
	all, err := s.sweep(ctx)
	var out []naming.Instance
	for _, in := range all {
		if v, has := in.Tags[s.opts.TagKey]; has && slices.Contains(values, v) {
			out = append(out, in)
		}
	}
	return out, err
}

// Invalidate makes the next List sweep again.
func (s *Shared) Invalidate() {
	s.mu.Lock()
	s.valid = false
	s.mu.Unlock()
}

func (s *Shared) sweep(ctx context.Context) ([]naming.Instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.valid && s.opts.Clock.Since(s.at) < s.opts.MaxAge {
		return s.all, s.err
	}
	all, err := s.c.List(ctx, Filter{Name: "tag-key", Values: []string{s.opts.TagKey}})
	if ctx.Err() != nil {
		// Our caller went away: its error is not the fleet's state.
		return all, err
	}
	s.all, s.err, s.at, s.valid = all, err, s.opts.Clock.Now(), true
	return all, err
}

// shareable reports whether filters are exactly tag:<TagKey> = literal
// values (no wildcards), and returns the values.
func (s *Shared) shareable(filters []Filter) ([]string, bool) {
	if s.opts.TagKey == "" || len(filters) != 1 || filters[0].Name != "tag:"+s.opts.TagKey || len(filters[0].Values) == 0 {
		return nil, false
	}
	for _, v := range filters[0].Values {
		if strings.ContainsAny(v, "*?\\") {
			return nil, false
		}
	}
	return filters[0].Values, true
}
