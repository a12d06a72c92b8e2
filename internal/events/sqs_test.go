package events

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// newQueue starts a fake SQS queue on a fake clock and an SDK client for
// it that does not long-poll (the fake's waits run on the fake clock).
func newQueue(t *testing.T, attempts int) (*fake.SQSServer, *SQS, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(at)
	srv := fake.NewSQSServer(clk, "aerostat-events")
	t.Cleanup(srv.Close)
	q, err := NewSQS(context.Background(), SQSOptions{
		QueueURL: srv.QueueURL(), Region: fake.SQSRegion, Endpoint: srv.URL, Wait: -1, Visibility: 30 * time.Second,
		MaxAttempts: attempts, Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "test", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv, q, clk
}

func bodies(msgs []Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Body
	}
	return out
}

func receipts(msgs []Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Receipt
	}
	return out
}

// TestSQSThroughSDK: the fake speaks the JSON protocol the real SDK
// sends and checks (MD5 of each body included), and every fault it
// injects reaches the SDK as SQS would make it.
func TestSQSThroughSDK(t *testing.T) {
	ctx := context.Background()
	send := func(srv *fake.SQSServer, n int) []string {
		var out []string
		for i := range n {
			b := fake.StateChangeBody("i-0000000000000000"+string(rune('a'+i)), naming.StateRunning, at)
			srv.Send(b)
			out = append(out, b)
		}
		return out
	}
	tests := map[string]struct {
		attempts int
		run      func(t *testing.T, srv *fake.SQSServer, q *SQS, clk *clocktesting.FakeClock)
	}{
		"receive and delete": {1, func(t *testing.T, srv *fake.SQSServer, q *SQS, _ *clocktesting.FakeClock) {
			sent := send(srv, 3)
			got, err := q.Receive(ctx)
			if err != nil || !slices.Equal(bodies(got), sent) {
				t.Fatalf("Receive = %v, %v; want the 3 sent in order", bodies(got), err)
			}
			if err := q.Delete(ctx, receipts(got)); err != nil {
				t.Fatal(err)
			}
			if srv.Len() != 0 || srv.Deleted() != 3 {
				t.Errorf("after delete: %d left, %d deleted; want 0, 3", srv.Len(), srv.Deleted())
			}
		}},
		"at most 10 a receive": {1, func(t *testing.T, srv *fake.SQSServer, q *SQS, _ *clocktesting.FakeClock) {
			send(srv, 12)
			got, err := q.Receive(ctx)
			if err != nil || len(got) != 10 {
				t.Fatalf("Receive = %d messages, %v; want 10", len(got), err)
			}
		}},
		"duplicates": {1, func(t *testing.T, srv *fake.SQSServer, q *SQS, _ *clocktesting.FakeClock) {
			srv.DuplicateNext(1)
			sent := send(srv, 1)
			got, err := q.Receive(ctx)
			if err != nil || !slices.Equal(bodies(got), []string{sent[0], sent[0]}) || got[0].ID == got[1].ID {
				t.Fatalf("Receive = %+v, %v; want two copies with distinct ids", got, err)
			}
		}},
		"reorder": {1, func(t *testing.T, srv *fake.SQSServer, q *SQS, _ *clocktesting.FakeClock) {
			srv.Reorder(true)
			sent := send(srv, 10)
			got, err := q.Receive(ctx)
			if err != nil || slices.Equal(bodies(got), sent) || len(got) != 10 {
				t.Fatalf("Receive = %d messages in send order %v, %v; want all 10 shuffled", len(got), slices.Equal(bodies(got), sent), err)
			}
		}},
		"delay": {1, func(t *testing.T, srv *fake.SQSServer, q *SQS, clk *clocktesting.FakeClock) {
			srv.Delay(5 * time.Second)
			send(srv, 1)
			if got, err := q.Receive(ctx); err != nil || len(got) != 0 {
				t.Fatalf("Receive before the delay = %d messages, %v; want none", len(got), err)
			}
			clk.Step(5 * time.Second)
			if got, err := q.Receive(ctx); err != nil || len(got) != 1 {
				t.Fatalf("Receive after the delay = %d messages, %v; want 1", len(got), err)
			}
		}},
		"drop": {1, func(t *testing.T, srv *fake.SQSServer, q *SQS, _ *clocktesting.FakeClock) {
			srv.DropNext(1)
			sent := send(srv, 2)
			got, err := q.Receive(ctx)
			if err != nil || !slices.Equal(bodies(got), sent[1:]) {
				t.Fatalf("Receive = %v, %v; want only the second", bodies(got), err)
			}
		}},
		"silent": {1, func(t *testing.T, srv *fake.SQSServer, q *SQS, _ *clocktesting.FakeClock) {
			srv.Silence(true)
			send(srv, 3)
			if got, err := q.Receive(ctx); err != nil || len(got) != 0 {
				t.Fatalf("Receive = %d messages, %v; want none and no error", len(got), err)
			}
		}},
		"throttled once, the SDK retries": {3, func(t *testing.T, srv *fake.SQSServer, q *SQS, _ *clocktesting.FakeClock) {
			srv.ThrottleNext(1)
			send(srv, 1)
			got, err := q.Receive(ctx)
			if err != nil || len(got) != 1 {
				t.Fatalf("Receive = %d messages, %v; want 1 after a retry", len(got), err)
			}
			if n := srv.Calls("ReceiveMessage"); n != 2 {
				t.Errorf("ReceiveMessage calls = %d, want 2", n)
			}
		}},
		"throttled past the retries": {1, func(t *testing.T, srv *fake.SQSServer, q *SQS, _ *clocktesting.FakeClock) {
			srv.ThrottleNext(1)
			if _, err := q.Receive(ctx); err == nil || !strings.Contains(err.Error(), fake.SQSCodeThrottled) {
				t.Fatalf("Receive error = %v, want %s", err, fake.SQSCodeThrottled)
			}
		}},
		"broken": {1, func(t *testing.T, srv *fake.SQSServer, q *SQS, _ *clocktesting.FakeClock) {
			srv.Break(fake.SQSCodeInternal, http.StatusInternalServerError)
			if _, err := q.Receive(ctx); err == nil || !strings.Contains(err.Error(), fake.SQSCodeInternal) {
				t.Fatalf("Receive error = %v, want %s", err, fake.SQSCodeInternal)
			}
			if err := q.Delete(ctx, []string{"rh-x-1"}); err == nil {
				t.Fatal("Delete on a broken queue returned no error")
			}
		}},
		"visibility timeout redelivers": {1, func(t *testing.T, srv *fake.SQSServer, q *SQS, clk *clocktesting.FakeClock) {
			send(srv, 1)
			first, err := q.Receive(ctx)
			if err != nil || len(first) != 1 {
				t.Fatalf("Receive = %d, %v", len(first), err)
			}
			if got, _ := q.Receive(ctx); len(got) != 0 {
				t.Fatalf("in-flight message delivered again before its visibility timeout")
			}
			clk.Step(30 * time.Second)
			again, err := q.Receive(ctx)
			if err != nil || len(again) != 1 || again[0].Receipt == first[0].Receipt {
				t.Fatalf("Receive after the timeout = %+v, %v; want the message with a new receipt", again, err)
			}
			// A stale receipt deletes nothing, as in SQS.
			if err := q.Delete(ctx, receipts(first)); err != nil || srv.Len() != 1 {
				t.Fatalf("Delete with a stale receipt: %v, %d left; want no error and 1 left", err, srv.Len())
			}
			if err := q.Delete(ctx, receipts(again)); err != nil || srv.Len() != 0 {
				t.Fatalf("Delete: %v, %d left", err, srv.Len())
			}
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv, q, clk := newQueue(t, tc.attempts)
			tc.run(t, srv, q, clk)
			if name != "receive and delete" && name != "at most 10 a receive" && name != "visibility timeout redelivers" && srv.Injected() == 0 {
				t.Errorf("no fault fired")
			}
		})
	}
}

// TestSQSWrongQueue: a queue URL the server does not know is an error
// naming QueueDoesNotExist, and a malformed URL is refused up front.
func TestSQSWrongQueue(t *testing.T) {
	srv, _, _ := newQueue(t, 1)
	q, err := NewSQS(context.Background(), SQSOptions{QueueURL: srv.URL + "/123456789012/other", Region: fake.SQSRegion, Endpoint: srv.URL, Wait: -1,
		MaxAttempts: 1, Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "test", "")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Receive(context.Background()); err == nil || !strings.Contains(err.Error(), "NonExistentQueue") && !strings.Contains(err.Error(), fake.SQSCodeNoQueue) {
		t.Fatalf("Receive error = %v, want QueueDoesNotExist", err)
	}
	for _, bad := range []string{"", "sqs.us-east-1.amazonaws.com/1/q", "ftp://x/1/q", "https://sqs.us-east-1.amazonaws.com/q"} {
		if _, err := NewSQS(context.Background(), SQSOptions{QueueURL: bad, Region: "us-east-1"}); err == nil || !strings.Contains(err.Error(), "--sqs-queue-url") {
			t.Errorf("NewSQS(%q) error = %v, want one naming --sqs-queue-url", bad, err)
		}
	}
}
