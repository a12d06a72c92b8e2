package ledger

import "go.mongodb.org/mongo-driver/v2/mongo"

// Transient reports store errors worth retrying a whole operation for:
// the store unreachable, timed out, its connection pool exhausted (server
// selection and pool waits time out wrapping DeadlineExceeded). Bad input,
// planner refusals and lost compare-and-sets (Claim retries those itself)
// are not.
func Transient(err error) bool {
	return mongo.IsNetworkError(err) || mongo.IsTimeout(err)
}
