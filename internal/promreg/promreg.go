// Package promreg registers Prometheus collectors that a second instance
// in the same process may register again: a command run twice in one
// process (1.x --register --update), a second agent, or a test that builds
// two controllers on one registry. The second instance shares the first
// one's collectors instead of failing.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns it, or returns the collector
// already registered under c's description when that one is a C.
// Errors: any other registration error (a clash with a collector of
// another type, help or labels), as prometheus returned it.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// Reuse is Register for a collector held in a struct field: it registers
// *c, or points *c at the collector already registered. Its errors are
// Register's, so constructors can errors.Join a list of Reuse calls.
func Reuse[C prometheus.Collector](reg prometheus.Registerer, c *C) error {
	got, err := Register(reg, *c)
	*c = got
	return err
}

// Replace registers c on reg in place of a collector of the same type
// already registered under c's description. It is for collectors that
// read one instance's state (a feed handler's node table): sharing the
// first one's, as Register does, would report an instance that stopped.
// Errors: Register's, for a clash with a collector of another type, help
// or labels.
func Replace[C prometheus.Collector](reg prometheus.Registerer, c C) error {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if _, ok := are.ExistingCollector.(C); ok && reg.Unregister(are.ExistingCollector) {
			err = reg.Register(c)
		}
	}
	return err
}
