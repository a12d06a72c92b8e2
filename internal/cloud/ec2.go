package cloud

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// Defaults of EC2Options.
const (
	// DefaultCallsPerSecond is well under EC2's refill of 20 Describe calls a
	// second per account, which other tools in the account share.
	DefaultCallsPerSecond = 5
	DefaultMaxAttempts    = 3
	// PageSize is EC2's largest MaxResults (the instances one DescribeInstances call returns): 10,000 instances in 10 calls.
	PageSize = 1000
	// tagBatch bounds the instance ids of one CreateTags call.
	tagBatch = 1000
)

// EC2Options configure NewEC2. Zero values take the defaults; region and
// credentials otherwise come from the AWS default chain (env, shared
// config, IRSA web identity, instance role).
type EC2Options struct {
	// Region overrides AWS_REGION / the shared config.
	Region string
	// Endpoint overrides the EC2 endpoint (tests, VPC endpoints); without
	// it the SDK honours AWS_ENDPOINT_URL_EC2 and AWS_ENDPOINT_URL.
	Endpoint string
	// MaxAttempts per API call, first try included (SDK standard retryer).
	MaxAttempts int
	// MaxBackoff caps the retryer's jittered exponential backoff (SDK
	// default 20 s).
	MaxBackoff time.Duration
	// CallsPerSecond is the client-side budget of HTTP calls (pages and
	// retries) shared by everything this EC2 value does. Default 5;
	// negative or +Inf means unlimited.
	CallsPerSecond float64
	// Burst of the budget's token bucket (default 1).
	Burst int
	// ThrottleBackoff is the first pause of every call after EC2 answered
	// RequestLimitExceeded; each further throttled call in a row doubles it
	// up to MaxThrottleBackoff, with jitter (defaults 1 s and 30 s). This
	// is on top of the SDK retryer's own jittered backoff, and holds back
	// every caller of this EC2 value, not just the throttled one.
	ThrottleBackoff, MaxThrottleBackoff time.Duration
	// Credentials override the default chain.
	Credentials aws.CredentialsProvider
	HTTPClient  aws.HTTPClient
	// Clock times the budget (default the real clock).
	Clock clock.Clock
}

// EC2 lists instances through the EC2 API. It implements Cloud, Tagger and
// APICallReporter and is safe for concurrent use.
type EC2 struct {
	client *ec2.Client
	budget *budget
	hook   atomic.Pointer[func(APICall)]

	// The lean DescribeInstances decoder (describe.go): page buffers, and
	// how many pages it handed to the SDK's decoder.
	bufs      sync.Pool
	fallbacks atomic.Int64
	// sdkDecoding turns the lean decoder off (tests and benchmarks compare).
	sdkDecoding bool
}

// NewEC2 builds an EC2 client from the default AWS configuration chain and
// opts. It does no network I/O; it fails when no region is configured.
func NewEC2(ctx context.Context, opts EC2Options) (*EC2, error) {
	if opts.CallsPerSecond == 0 {
		opts.CallsPerSecond = DefaultCallsPerSecond
	}
	if opts.CallsPerSecond < 0 || math.IsInf(opts.CallsPerSecond, 1) || math.IsNaN(opts.CallsPerSecond) {
		opts.CallsPerSecond = math.Inf(1)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	cfg, err := LoadAWSConfig(ctx, AWSOptions{Region: opts.Region, Credentials: opts.Credentials, HTTPClient: opts.HTTPClient,
		MaxAttempts: opts.MaxAttempts, MaxBackoff: opts.MaxBackoff})
	if errors.Is(err, ErrNoRegion) {
		return nil, fmt.Errorf("%w: set the region option or AWS_REGION", err)
	}
	if err != nil {
		return nil, err
	}
	e := &EC2{budget: newBudget(opts.Clock, opts.CallsPerSecond, opts.Burst, opts.ThrottleBackoff, opts.MaxThrottleBackoff)}
	e.client = ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.HTTPClient = bufferedBodies{o.HTTPClient}
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			// After Retry, so every attempt waits for the budget and is counted.
			return s.Finalize.Insert(attemptMiddleware{e}, "Retry", middleware.After)
		})
	})
	return e, nil
}

// List implements Cloud with DescribeInstances, MaxResults 1000.
func (e *EC2) List(ctx context.Context, filters ...Filter) ([]naming.Instance, error) {
	in := &ec2.DescribeInstancesInput{MaxResults: aws.Int32(PageSize)}
	for _, f := range filters {
		in.Filters = append(in.Filters, types.Filter{Name: aws.String(f.Name), Values: f.Values})
	}
	var out []naming.Instance
	p := ec2.NewDescribeInstancesPaginator(e.client, in)
	lean := func(o *ec2.Options) { o.APIOptions = append(o.APIOptions, e.leanDescribe) }
	for page := 1; p.HasMorePages(); page++ {
		resp, err := p.NextPage(ctx, lean)
		if err != nil {
			return out, fmt.Errorf("describing instances (page %d): %w", page, err)
		}
		if insts, ok := resp.ResultMetadata.Get(leanKey{}).([]naming.Instance); ok {
			if out == nil {
				out = insts
			} else {
				out = append(out, insts...)
			}
			continue
		}
		for _, r := range resp.Reservations {
			for _, inst := range r.Instances {
				out = append(out, instanceOf(inst))
			}
		}
	}
	return out, nil
}

func instanceOf(inst types.Instance) naming.Instance {
	out := naming.Instance{
		ID:         aws.ToString(inst.InstanceId),
		PrivateIP:  aws.ToString(inst.PrivateIpAddress),
		LaunchTime: aws.ToTime(inst.LaunchTime),
		Tags:       make(map[string]string, len(inst.Tags)),
	}
	if inst.State != nil {
		out.State = naming.InstanceState(inst.State.Name)
	}
	for _, t := range inst.Tags {
		out.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

// Tag implements Tagger with CreateTags, up to 1000 instances a call.
func (e *EC2) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	if len(ids) == 0 || len(tags) == 0 {
		return nil
	}
	var ts []types.Tag
	for k, v := range tags {
		ts = append(ts, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	for start := 0; start < len(ids); start += tagBatch {
		batch := ids[start:min(start+tagBatch, len(ids))]
		if _, err := e.client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: batch, Tags: ts}); err != nil {
			return fmt.Errorf("tagging %d instances: %w", len(batch), err)
		}
	}
	return nil
}

// SetAPICallHook implements APICallReporter.
func (e *EC2) SetAPICallHook(fn func(APICall)) {
	if fn == nil {
		e.hook.Store(nil)
		return
	}
	e.hook.Store(&fn)
}

// attemptMiddleware spends the budget and reports each HTTP attempt.
type attemptMiddleware struct{ e *EC2 }

func (attemptMiddleware) ID() string { return "AerostatCallBudget" }

func (m attemptMiddleware) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	waited, at, err := m.e.budget.wait(ctx)
	if err != nil {
		return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("waiting for ec2 call budget: %w", err)
	}
	out, md, err := next.HandleFinalize(ctx, in)
	if err == nil || IsThrottled(err) {
		m.e.budget.observe(err != nil)
	}
	if fn := m.e.hook.Load(); fn != nil {
		(*fn)(APICall{Operation: awsmiddleware.GetOperationName(ctx), Result: ResultOf(err), BudgetWait: waited, At: at})
	}
	return out, md, err
}

// BudgetLimit implements BudgetReporter.
func (e *EC2) BudgetLimit() float64 { return e.budget.limit() }

// ThrottleBackoff implements BudgetReporter.
func (e *EC2) ThrottleBackoff() time.Duration { return e.budget.backoff() }

// throttleCodes are the error codes AWS services use for throttling.
var throttleCodes = map[string]bool{
	"RequestLimitExceeded":                   true,
	"Throttling":                             true,
	"ThrottlingException":                    true,
	"ThrottledException":                     true,
	"RequestThrottled":                       true,
	"RequestThrottledException":              true,
	"TooManyRequestsException":               true,
	"SlowDown":                               true,
	"ProvisionedThroughputExceededException": true,
	"BandwidthLimitExceeded":                 true,
	"LimitExceededException":                 true,
}

// IsThrottled reports whether err (or an error it wraps) is an AWS
// throttling error such as EC2's RequestLimitExceeded.
func IsThrottled(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && throttleCodes[apiErr.ErrorCode()]
}

// ResultOf classifies an error for metrics: "success", "throttled" or "error".
func ResultOf(err error) string {
	switch {
	case err == nil:
		return ResultSuccess
	case IsThrottled(err):
		return ResultThrottled
	default:
		return ResultError
	}
}

// bufferedBodies hands the transport its own copy of each (small, form
// encoded) request body. The SDK closes the request body as soon as the
// response headers arrive; when the transport is still doing its final
// read of the body, that read fails, the transport closes the connection
// and the response body in flight is lost ("use of closed network
// connection", aws/aws-sdk-go-v2#2737). The SDK then retries, which
// costs a call of the budget; against a fast endpoint it happens on a
// third of the calls.
type bufferedBodies struct{ next aws.HTTPClient }

// BufferRequestBodies wraps an SDK HTTP client (nil: the SDK's default
// one is wrapped by the caller's client options) against
// aws/aws-sdk-go-v2#2737, for every AWS client of the project (EC2, SQS).
func BufferRequestBodies(next aws.HTTPClient) aws.HTTPClient { return bufferedBodies{next} }

func (c bufferedBodies) Do(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return c.next.Do(req)
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, fmt.Errorf("reading request body: %w", err)
	}
	r2 := req.Clone(req.Context())
	r2.Body = io.NopCloser(bytes.NewReader(b))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	r2.ContentLength = int64(len(b))
	return c.next.Do(r2)
}
