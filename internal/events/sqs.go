package events

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/aerostat-io/aerostat/internal/cloud"
)

// Message is one received queue message.
type Message struct {
	ID      string
	Receipt string
	Body    string
}

// Queue is where events come from.
//
// Error contract: Receive blocks for at most the queue's long-poll wait
// (or until ctx ends) and returns the messages received, possibly none,
// or an error and no messages. Delete removes messages by receipt; it
// returns an error if any could not be deleted (they are then delivered
// again later, which is harmless). Both are safe for concurrent use.
type Queue interface {
	Receive(ctx context.Context) ([]Message, error)
	Delete(ctx context.Context, receipts []string) error
}

// SQSOptions configure NewSQS.
type SQSOptions struct {
	// QueueURL is the queue's URL (https://sqs.<region>.amazonaws.com/<account>/<name>).
	QueueURL string
	// Region overrides AWS_REGION / the shared config; empty takes the
	// region from a standard queue URL.
	Region string
	// Endpoint overrides the SQS endpoint (tests, VPC endpoints).
	Endpoint string
	// Wait is the long-poll wait of one receive (zero or past 20 s: 20 s,
	// SQS's longest; negative: no wait, short polling).
	Wait time.Duration
	// Visibility is how long a received message stays hidden before SQS
	// delivers it again if it was not deleted (default 60 s).
	Visibility time.Duration
	// MaxAttempts per call, first try included (default
	// cloud.DefaultMaxAttempts).
	MaxAttempts int
	Credentials aws.CredentialsProvider
	HTTPClient  aws.HTTPClient
}

// SQS is a Queue on Amazon SQS (aws-sdk-go-v2 service/sqs).
type SQS struct {
	client *sqs.Client
	url    string
	wait   int32
	vis    int32
}

// NewSQS builds an SQS client from the default AWS configuration chain.
// It does no network I/O.
func NewSQS(ctx context.Context, opts SQSOptions) (*SQS, error) {
	u, err := url.Parse(opts.QueueURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Count(strings.Trim(u.Path, "/"), "/") != 1 {
		return nil, fmt.Errorf("--sqs-queue-url %q: want https://sqs.<region>.amazonaws.com/<account>/<queue>", opts.QueueURL)
	}
	switch {
	case opts.Wait < 0:
		opts.Wait = 0
	case opts.Wait == 0 || opts.Wait > 20*time.Second:
		opts.Wait = 20 * time.Second
	}
	if opts.Visibility <= 0 {
		opts.Visibility = time.Minute
	}
	region := opts.Region
	if host := strings.Split(u.Host, "."); region == "" && len(host) > 2 && host[0] == "sqs" {
		region = host[1]
	}
	cfg, err := cloud.LoadAWSConfig(ctx, cloud.AWSOptions{Region: region, Credentials: opts.Credentials, HTTPClient: opts.HTTPClient, MaxAttempts: opts.MaxAttempts})
	if errors.Is(err, cloud.ErrNoRegion) {
		return nil, fmt.Errorf("%w for sqs: set AWS_REGION or use a standard queue url", err)
	}
	if err != nil {
		return nil, err
	}
	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		// A long poll's response lost to aws/aws-sdk-go-v2#2737 would
		// be a failed receive (and a back-off) on a healthy queue.
		o.HTTPClient = cloud.BufferRequestBodies(o.HTTPClient)
	})
	return &SQS{client: client, url: opts.QueueURL, wait: int32(opts.Wait / time.Second), vis: int32(opts.Visibility / time.Second)}, nil
}

// Receive implements Queue: one long poll for up to 10 messages.
func (q *SQS) Receive(ctx context.Context) ([]Message, error) {
	out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(q.url),
		MaxNumberOfMessages: 10,
		WaitTimeSeconds:     q.wait,
		VisibilityTimeout:   q.vis,
	})
	if err != nil {
		return nil, fmt.Errorf("receiving messages: %w", err)
	}
	msgs := make([]Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		msgs = append(msgs, Message{ID: aws.ToString(m.MessageId), Receipt: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body)})
	}
	return msgs, nil
}

// Delete implements Queue with DeleteMessageBatch, 10 receipts a call.
func (q *SQS) Delete(ctx context.Context, receipts []string) error {
	var errs []error
	for start := 0; start < len(receipts); start += 10 {
		batch := receipts[start:min(start+10, len(receipts))]
		entries := make([]types.DeleteMessageBatchRequestEntry, len(batch))
		for i, r := range batch {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r)}
		}
		out, err := q.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting %d messages: %w", len(batch), err))
			continue
		}
		for _, f := range out.Failed {
			errs = append(errs, fmt.Errorf("deleting message: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return errors.Join(errs...)
}
