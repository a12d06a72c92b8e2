package main

import (
	"testing"

	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

// TestMain stops the embedded store the tests share and removes its data.
func TestMain(m *testing.M) { ledgertest.Main(m) }
