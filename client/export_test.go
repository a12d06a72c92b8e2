package client

import "github.com/aerostat-io/aerostat/internal/ledger"

// NewForStore wraps an open store, for tests that put something in front
// of the real ledger.
func NewForStore(store ledger.Store, opts Options) *Client { return newClient(store, opts) }
