package fake

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

// stepBeforeFirstTimer is a fake clock that a test steps at the worst
// moment for a long poll: after the receive has read the time and before
// its first timer is armed, so that timer counts from the later time.
type stepBeforeFirstTimer struct {
	*clocktesting.FakeClock
	step time.Duration
	once sync.Once
}

func (c *stepBeforeFirstTimer) NewTimer(d time.Duration) clock.Timer {
	c.once.Do(func() { c.FakeClock.Step(c.step) })
	return c.FakeClock.NewTimer(d)
}

// TestReceiveSeesAStepBeforeItsTimer: a long poll whose clock steps while
// it arms its timer answers from the stepped time (the message visible,
// or the wait over) instead of waiting for a step that never comes.
func TestReceiveSeesAStepBeforeItsTimer(t *testing.T) {
	tests := map[string]struct {
		send     bool
		wait     int // WaitTimeSeconds
		step     time.Duration
		wantMsgs int
	}{
		"the delayed message becomes visible": {send: true, wait: 20, step: time.Second, wantMsgs: 1},
		"the step passes its visibility":      {send: true, wait: 20, step: 5 * time.Second, wantMsgs: 1},
		"the long poll ends":                  {wait: 1, step: time.Second, wantMsgs: 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			clk := &stepBeforeFirstTimer{FakeClock: clocktesting.NewFakeClock(t0), step: tt.step}
			q := NewSQS(clk, "http://sqs.test", "aerostat-events")
			if tt.send {
				q.Delay(time.Second)
				q.Send("held for a second")
			}
			body, err := json.Marshal(map[string]any{"QueueUrl": q.QueueURL(), "MaxNumberOfMessages": 10, "WaitTimeSeconds": tt.wait})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/", strings.NewReader(string(body)))
			req.Header.Set("X-Amz-Target", "AmazonSQS.ReceiveMessage")
			rec := httptest.NewRecorder()
			done := make(chan struct{})
			go func() { defer close(done); q.ServeHTTP(rec, req) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				// Only a receive stuck on a timer past the clock's last
				// step gets here; cancel it so the goroutine ends.
				cancel()
				<-done
				t.Fatalf("receive still waiting at %v, 30 s after the clock stepped to it", clk.Now())
			}
			var out struct{ Messages []sqsMessageOut }
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("answer %d %q: %v", rec.Code, rec.Body, err)
			}
			if rec.Code != http.StatusOK || len(out.Messages) != tt.wantMsgs {
				t.Errorf("answer %d with %d messages, want 200 with %d: %s", rec.Code, len(out.Messages), tt.wantMsgs, rec.Body)
			}
		})
	}
}
