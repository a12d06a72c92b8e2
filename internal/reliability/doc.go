// Package reliability holds Aerostat's cross-component reliability and
// security suite and the few tools it shares with the soak
// program (hack/soak): a TCP proxy that injects store faults, a ledger
// wrapper that stops a controller after k writes, and the invariant
// checks. The tests start real components: the embedded store (or
// AEROSTAT_TEST_MONGODB_URI), the fake EC2 Query API behind the real SDK
// adapter, the controller's Syncer and Standalone loop, agents writing
// real hosts files.
//
// The invariants:
//   - a name is bound at most once: no hostname is held by two documents,
//     and no registration is told a name another one was told;
//   - after a completed pass every live instance holds exactly one name;
//   - nothing is released on an unknown (failed, throttled, partial or
//     suspiciously empty) listing;
//   - agents never write a partial or empty block because of a fault, and
//     catch up once it is over.
package reliability
