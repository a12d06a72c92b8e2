package fake

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// Fake SQS account and region, as they appear in queue URLs and in the
// EventBridge envelopes of the messages.
const (
	SQSAccount = "123456789012"
	SQSRegion  = "us-east-1"
)

// SQS error codes the fake answers with.
const (
	SQSCodeThrottled     = "RequestThrottled"
	SQSCodeInternal      = "InternalFailure"
	SQSCodeNoQueue       = "QueueDoesNotExist"
	SQSCodeBadReceipt    = "ReceiptHandleIsInvalid"
	SQSCodeInvalidParam  = "InvalidParameterValue"
	sqsDefaultVisibility = 30 * time.Second
	sqsMaxWait           = 20 * time.Second
)

// SQS is one standard Amazon SQS queue served over the AWS JSON 1.0
// protocol that aws-sdk-go-v2's service/sqs speaks (POST, X-Amz-Target:
// AmazonSQS.<Operation>, JSON bodies, {"__type", "message"} errors, the
// MD5 of each body the SDK checks). It keeps SQS's semantics that matter
// to a consumer: at-least-once delivery, long polls (WaitTimeSeconds),
// up to 10 messages a receive, a visibility timeout after which an
// undeleted message is delivered again, deletes by receipt handle.
//
// Faults make it misbehave the ways a real queue can: duplicates,
// reordering, delays, drops, throttling, a broken queue (every call
// fails) and a silent one (calls succeed, nothing is delivered). Safe for
// concurrent use; time comes from the injected clock.
type SQS struct {
	clock clock.WithTicker
	name  string
	url   string

	mu       sync.Mutex
	msgs     []*sqsMessage // in send order; deleted ones until compacted
	live     int
	receipts map[string]*sqsMessage
	seq      int
	wake     chan struct{} // closed and replaced when a message is added
	calls    map[string]int
	sent     int
	deleted  int
	faults   sqsFaults
	rnd      *rand.Rand
	injected int
}

type sqsMessage struct {
	id        string
	body      string
	md5       string
	visibleAt time.Time
	receipt   string // of the last delivery; "" before the first
	receives  int
	sentAt    time.Time
	deleted   bool
}

type sqsFaults struct {
	duplicate, drop  float64 // probability per message sent
	dupNext, dropNxt int
	reorder          bool
	delay            time.Duration
	throttleNext     int
	throttleFrac     float64
	brokenStatus     int
	brokenCode       string
	silent           bool
}

// NewSQS returns an empty queue named name whose URL is on baseURL (the
// server's address; the queue URL is baseURL/<account>/<name>).
func NewSQS(clk clock.WithTicker, baseURL, name string) *SQS {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &SQS{clock: clk, name: name, url: strings.TrimSuffix(baseURL, "/") + "/" + SQSAccount + "/" + name,
		wake: make(chan struct{}), calls: map[string]int{}, receipts: map[string]*sqsMessage{}, rnd: rand.New(rand.NewPCG(1, 2))}
}

// QueueURL is the queue URL to pass as QueueUrl.
func (q *SQS) QueueURL() string { return q.url }

// Follow sends an "EC2 Instance State-change Notification" for every state
// change of fleet from now on, as an EventBridge rule on aws.ec2 with an
// SQS target does.
func (q *SQS) Follow(fleet *Fleet) {
	fleet.Watch(func(c StateChange) { q.Send(StateChangeBody(c.ID, c.State, c.At)) })
}

// Send puts one message on the queue (subject to the drop, duplicate and
// delay faults) and returns its id, or "" if it was dropped.
func (q *SQS) Send(body string) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.sendLocked(body, 0)
}

func (q *SQS) sendLocked(body string, delay time.Duration) string {
	q.sent++
	f := &q.faults
	switch {
	case f.dropNxt > 0:
		f.dropNxt--
		q.injected++
		return ""
	case f.drop > 0 && q.rnd.Float64() < f.drop:
		q.injected++
		return ""
	case f.silent:
		q.injected++
		return ""
	}
	copies := 1
	switch {
	case f.dupNext > 0:
		f.dupNext--
		copies = 2
	case f.duplicate > 0 && q.rnd.Float64() < f.duplicate:
		copies = 2
	}
	if copies > 1 {
		q.injected++
	}
	now := q.clock.Now()
	if f.delay > 0 {
		q.injected++
	}
	sum := md5.Sum([]byte(body))
	var id string
	for range copies {
		q.seq++
		id = fmt.Sprintf("00000000-0000-4000-9000-%012x", q.seq)
		q.msgs = append(q.msgs, &sqsMessage{id: id, body: body, md5: hex.EncodeToString(sum[:]),
			visibleAt: now.Add(max(delay, f.delay)), sentAt: now})
		q.live++
	}
	close(q.wake)
	q.wake = make(chan struct{})
	return id
}

// DuplicateNext delivers each of the next n messages sent twice (two
// copies with distinct message ids, as a standard queue may).
func (q *SQS) DuplicateNext(n int) { q.with(func(f *sqsFaults) { f.dupNext = n }) }

// DuplicateFraction duplicates each message sent with probability p.
func (q *SQS) DuplicateFraction(p float64, seed uint64) {
	q.with(func(f *sqsFaults) { f.duplicate = p; q.rnd = rand.New(rand.NewPCG(seed, seed)) })
}

// DropNext loses the next n messages sent.
func (q *SQS) DropNext(n int) { q.with(func(f *sqsFaults) { f.dropNxt = n }) }

// DropFraction loses each message sent with probability p.
func (q *SQS) DropFraction(p float64, seed uint64) {
	q.with(func(f *sqsFaults) { f.drop = p; q.rnd = rand.New(rand.NewPCG(seed, seed)) })
}

// Reorder makes each receive pick visible messages in random order
// instead of send order.
func (q *SQS) Reorder(on bool) { q.with(func(f *sqsFaults) { f.reorder = on }) }

// Delay makes messages sent from now on visible only d after they were sent.
func (q *SQS) Delay(d time.Duration) { q.with(func(f *sqsFaults) { f.delay = d }) }

// ThrottleNext fails the next n calls with RequestThrottled.
func (q *SQS) ThrottleNext(n int) { q.with(func(f *sqsFaults) { f.throttleNext = n }) }

// ThrottleFraction fails each call with RequestThrottled with probability p.
func (q *SQS) ThrottleFraction(p float64, seed uint64) {
	q.with(func(f *sqsFaults) { f.throttleFrac = p; q.rnd = rand.New(rand.NewPCG(seed, seed)) })
}

// Break fails every call with code and HTTP status until Break("", 0)
// (e.g. 500 InternalFailure, or 400 QueueDoesNotExist for a deleted queue).
func (q *SQS) Break(code string, status int) {
	q.with(func(f *sqsFaults) { f.brokenCode, f.brokenStatus = code, status })
}

// Silence makes the queue accept and answer every call while losing every
// message sent (an EventBridge rule deleted or disabled).
func (q *SQS) Silence(on bool) { q.with(func(f *sqsFaults) { f.silent = on }) }

// ResetFaults turns every fault off and zeroes the injected count.
func (q *SQS) ResetFaults() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.faults, q.injected = sqsFaults{}, 0
}

// Injected is how many faults fired since the last ResetFaults: messages
// dropped, duplicated or delayed, calls throttled or failed.
func (q *SQS) Injected() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.injected
}

// Len is the number of messages not yet deleted (visible or in flight).
func (q *SQS) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.live
}

// Deleted is the number of messages deleted.
func (q *SQS) Deleted() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.deleted
}

// Calls is the number of requests for op (e.g. "ReceiveMessage"), failed
// ones included.
func (q *SQS) Calls(op string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.calls[op]
}

func (q *SQS) with(fn func(*sqsFaults)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	fn(&q.faults)
}

// StateChangeBody is the EventBridge envelope of an "EC2 Instance
// State-change Notification" as EventBridge puts it on an SQS queue.
func StateChangeBody(id string, state naming.InstanceState, at time.Time) string {
	return eventBody("EC2 Instance State-change Notification", id, at, map[string]string{"instance-id": id, "state": string(state)})
}

// SpotInterruptionBody is an "EC2 Spot Instance Interruption Warning".
func SpotInterruptionBody(id string, at time.Time) string {
	return eventBody("EC2 Spot Instance Interruption Warning", id, at, map[string]string{"instance-id": id, "instance-action": "terminate"})
}

// RebalanceBody is an "EC2 Instance Rebalance Recommendation".
func RebalanceBody(id string, at time.Time) string {
	return eventBody("EC2 Instance Rebalance Recommendation", id, at, map[string]string{"instance-id": id})
}

func eventBody(detailType, id string, at time.Time, detail map[string]string) string {
	b, _ := json.Marshal(map[string]any{
		"version": "0", "id": fmt.Sprintf("%08x-0000-4000-8000-%012x", at.UnixNano()&0xffffffff, rand.Uint64()&0xffffffffffff),
		"detail-type": detailType, "source": "aws.ec2", "account": SQSAccount,
		"time": at.UTC().Format(time.RFC3339), "region": SQSRegion,
		"resources": []string{"arn:aws:ec2:" + SQSRegion + ":" + SQSAccount + ":instance/" + id},
		"detail":    detail,
	})
	return string(b)
}

// SQSServer is an SQS queue on an httptest server; point the SDK's
// BaseEndpoint at URL.
type SQSServer struct {
	*SQS
	URL string
	srv *httptest.Server
}

// NewSQSServer starts a queue named name on a local port.
func NewSQSServer(clk clock.WithTicker, name string) *SQSServer {
	s := &SQSServer{}
	s.srv = httptest.NewUnstartedServer(nil)
	s.srv.Start()
	s.URL = s.srv.URL
	s.SQS = NewSQS(clk, s.URL, name)
	s.srv.Config.Handler = s.SQS
	return s
}

// Close stops the server.
func (s *SQSServer) Close() { s.srv.Close() }

// IsSQSRequest reports whether r is an SQS JSON-protocol call (so one
// listener can serve the EC2 Query API and SQS side by side).
func IsSQSRequest(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
}

func (q *SQS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	if r.Method != http.MethodPost || !ok {
		writeSQSError(w, http.StatusBadRequest, "InvalidAction", "want POST with X-Amz-Target: AmazonSQS.<Operation>")
		return
	}
	var in sqsInput
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
		writeSQSError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	q.mu.Lock()
	q.calls[op]++
	status, code := q.callFault()
	q.mu.Unlock()
	if code != "" {
		writeSQSError(w, status, code, "fault injected by the fake: "+code)
		return
	}
	if in.QueueURL != q.url {
		writeSQSError(w, http.StatusBadRequest, SQSCodeNoQueue, fmt.Sprintf("The specified queue %q does not exist.", in.QueueURL))
		return
	}
	switch op {
	case "ReceiveMessage":
		q.receive(w, r, in)
	case "DeleteMessage":
		q.delete(w, in)
	case "DeleteMessageBatch":
		q.deleteBatch(w, in)
	case "SendMessage":
		q.mu.Lock()
		id := q.sendLocked(in.MessageBody, time.Duration(in.DelaySeconds)*time.Second)
		q.mu.Unlock()
		if id == "" {
			id = "dropped"
		}
		sum := md5.Sum([]byte(in.MessageBody))
		writeSQSJSON(w, map[string]string{"MessageId": id, "MD5OfMessageBody": hex.EncodeToString(sum[:])})
	default:
		writeSQSError(w, http.StatusBadRequest, "InvalidAction", "The action "+op+" is not valid for this fake.")
	}
}

// callFault decides whether this call fails; q.mu is held.
func (q *SQS) callFault() (int, string) {
	f := &q.faults
	switch {
	case f.brokenCode != "":
		q.injected++
		return f.brokenStatus, f.brokenCode
	case f.throttleNext > 0:
		f.throttleNext--
		q.injected++
		return http.StatusBadRequest, SQSCodeThrottled
	case f.throttleFrac > 0 && q.rnd.Float64() < f.throttleFrac:
		q.injected++
		return http.StatusBadRequest, SQSCodeThrottled
	}
	return 0, ""
}

type sqsInput struct {
	QueueURL            string `json:"QueueUrl"`
	MaxNumberOfMessages int    `json:"MaxNumberOfMessages"`
	WaitTimeSeconds     *int   `json:"WaitTimeSeconds"`
	VisibilityTimeout   *int   `json:"VisibilityTimeout"`
	ReceiptHandle       string `json:"ReceiptHandle"`
	MessageBody         string `json:"MessageBody"`
	DelaySeconds        int    `json:"DelaySeconds"`
	Entries             []struct {
		ID            string `json:"Id"`
		ReceiptHandle string `json:"ReceiptHandle"`
	} `json:"Entries"`
}

type sqsMessageOut struct {
	MessageID     string            `json:"MessageId"`
	ReceiptHandle string            `json:"ReceiptHandle"`
	MD5OfBody     string            `json:"MD5OfBody"`
	Body          string            `json:"Body"`
	Attributes    map[string]string `json:"Attributes,omitempty"`
}

func (q *SQS) receive(w http.ResponseWriter, r *http.Request, in sqsInput) {
	maxN := in.MaxNumberOfMessages
	if maxN == 0 {
		maxN = 1
	}
	if maxN < 1 || maxN > 10 {
		writeSQSError(w, http.StatusBadRequest, SQSCodeInvalidParam, fmt.Sprintf("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", maxN))
		return
	}
	wait := time.Duration(0)
	if in.WaitTimeSeconds != nil {
		wait = time.Duration(*in.WaitTimeSeconds) * time.Second
	}
	if wait < 0 || wait > sqsMaxWait {
		writeSQSError(w, http.StatusBadRequest, SQSCodeInvalidParam, fmt.Sprintf("Value %v for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", wait.Seconds()))
		return
	}
	vis := sqsDefaultVisibility
	if in.VisibilityTimeout != nil {
		vis = time.Duration(*in.VisibilityTimeout) * time.Second
	}
	deadline := q.clock.Now().Add(wait)
	for {
		q.mu.Lock()
		now := q.clock.Now()
		out, next := q.take(now, maxN, vis)
		wake := q.wake
		q.mu.Unlock()
		if len(out) > 0 || !now.Before(deadline) {
			writeSQSJSON(w, map[string]any{"Messages": out})
			return
		}
		d := deadline.Sub(now)
		if !next.IsZero() && next.Sub(now) < d {
			d = next.Sub(now)
		}
		t := q.clock.NewTimer(d)
		if q.steppedSince(now) {
			// A timer fires d after the clock's time when it is made,
			// not after now: made after a fake clock's step, it would
			// wait for a further step that may never come.
			t.Stop()
			continue
		}
		select {
		case <-wake:
		case <-t.C():
		case <-r.Context().Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

// steppedSince reports whether a clock other than the real one has moved
// since now. A fake clock moves only when a test steps it, so a move means
// a step; the real clock moves all the time, by microseconds here, which
// delays a timer by as much and no more.
func (q *SQS) steppedSince(now time.Time) bool {
	if _, isReal := q.clock.(clock.RealClock); isReal {
		return false
	}
	return !q.clock.Now().Equal(now)
}

// take delivers up to n visible messages and hides them for vis; it also
// returns when the next hidden message becomes visible (zero: none).
// q.mu is held.
func (q *SQS) take(now time.Time, n int, vis time.Duration) ([]sqsMessageOut, time.Time) {
	var visible []*sqsMessage
	var next time.Time
	for _, m := range q.msgs {
		if m.deleted {
			continue
		}
		if m.visibleAt.After(now) {
			if next.IsZero() || m.visibleAt.Before(next) {
				next = m.visibleAt
			}
			continue
		}
		visible = append(visible, m)
	}
	if q.faults.reorder && len(visible) > 1 {
		q.injected++
		q.rnd.Shuffle(len(visible), func(i, j int) { visible[i], visible[j] = visible[j], visible[i] })
	}
	out := []sqsMessageOut{}
	for _, m := range visible[:min(n, len(visible))] {
		m.receives++
		delete(q.receipts, m.receipt)
		m.receipt = fmt.Sprintf("rh-%s-%d", m.id, m.receives)
		q.receipts[m.receipt] = m
		m.visibleAt = now.Add(vis)
		out = append(out, sqsMessageOut{MessageID: m.id, ReceiptHandle: m.receipt, MD5OfBody: m.md5, Body: m.body,
			Attributes: map[string]string{
				"ApproximateReceiveCount": strconv.Itoa(m.receives),
				"SentTimestamp":           strconv.FormatInt(m.sentAt.UnixMilli(), 10),
			}})
	}
	return out, next
}

// deleteReceipt removes the message last delivered with receipt. A stale
// receipt (the message was delivered again since, or is gone) deletes
// nothing and is not an error, as in SQS; a malformed one is.
// q.mu is held.
func (q *SQS) deleteReceipt(receipt string) error {
	if !strings.HasPrefix(receipt, "rh-") {
		return fmt.Errorf("the receipt handle %q is not valid", receipt)
	}
	m, ok := q.receipts[receipt]
	if !ok {
		return nil
	}
	delete(q.receipts, receipt)
	m.deleted = true
	q.deleted++
	q.live--
	if q.live < len(q.msgs)/2 {
		kept := q.msgs[:0]
		for _, m := range q.msgs {
			if !m.deleted {
				kept = append(kept, m)
			}
		}
		clear(q.msgs[len(kept):])
		q.msgs = kept
	}
	return nil
}

func (q *SQS) delete(w http.ResponseWriter, in sqsInput) {
	q.mu.Lock()
	err := q.deleteReceipt(in.ReceiptHandle)
	q.mu.Unlock()
	if err != nil {
		writeSQSError(w, http.StatusBadRequest, SQSCodeBadReceipt, err.Error())
		return
	}
	writeSQSJSON(w, map[string]any{})
}

func (q *SQS) deleteBatch(w http.ResponseWriter, in sqsInput) {
	if len(in.Entries) == 0 || len(in.Entries) > 10 {
		writeSQSError(w, http.StatusBadRequest, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", fmt.Sprintf("%d entries: want 1 to 10", len(in.Entries)))
		return
	}
	type ok struct {
		ID string `json:"Id"`
	}
	type failed struct {
		ID          string `json:"Id"`
		Code        string `json:"Code"`
		Message     string `json:"Message"`
		SenderFault bool   `json:"SenderFault"`
	}
	okOut, failedOut := []ok{}, []failed{}
	q.mu.Lock()
	for _, e := range in.Entries {
		if err := q.deleteReceipt(e.ReceiptHandle); err != nil {
			failedOut = append(failedOut, failed{ID: e.ID, Code: SQSCodeBadReceipt, Message: err.Error(), SenderFault: true})
			continue
		}
		okOut = append(okOut, ok{ID: e.ID})
	}
	q.mu.Unlock()
	writeSQSJSON(w, map[string]any{"Successful": okOut, "Failed": failedOut})
}

func writeSQSJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-RequestId", "00000000-0000-4000-8000-000000000000")
	_ = json.NewEncoder(w).Encode(v)
}

func writeSQSError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	if code == SQSCodeNoQueue { // the code the query protocol used, kept for compatibility
		w.Header().Set("X-Amzn-Query-Error", "AWS.SimpleQueueService.NonExistentQueue;Sender")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.sqs#" + code, "message": msg})
}
