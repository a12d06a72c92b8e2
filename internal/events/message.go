// Package events turns EC2 notifications that EventBridge puts on an SQS
// queue (instance state changes, spot interruption warnings, rebalance
// recommendations) into wake-ups for the controller. An event names
// instances to look at again; it never says what to write: the controller
// still describes those instances (or lists the fleet) and plans from what
// EC2 answers, so a lost, duplicated, reordered or forged message can make
// a pass happen sooner or later, never release a name.
package events

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// Kind is what an event announces.
type Kind string

// Event kinds, by EventBridge detail-type.
const (
	KindStateChange      Kind = "state-change"      // EC2 Instance State-change Notification
	KindSpotInterruption Kind = "spot-interruption" // EC2 Spot Instance Interruption Warning
	KindRebalance        Kind = "rebalance"         // EC2 Instance Rebalance Recommendation
	KindOther            Kind = "other"             // any other event: deleted, wakes nothing
)

var detailTypes = map[string]Kind{
	"EC2 Instance State-change Notification": KindStateChange,
	"EC2 Spot Instance Interruption Warning": KindSpotInterruption,
	"EC2 Instance Rebalance Recommendation":  KindRebalance,
}

// Event is one parsed notification.
type Event struct {
	Kind       Kind
	InstanceID string
	// State is the new state of a state change ("" for other kinds).
	State naming.InstanceState
	// Time is when EventBridge says it happened (zero if absent).
	Time time.Time
}

// envelope is the part of an EventBridge event this package reads.
type envelope struct {
	Version    string `json:"version"`
	DetailType string `json:"detail-type"`
	Source     string `json:"source"`
	Time       string `json:"time"`
	Detail     struct {
		InstanceID string `json:"instance-id"`
		State      string `json:"state"`
	} `json:"detail"`
}

var instanceIDPattern = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)

var states = map[string]naming.InstanceState{
	"pending": naming.StatePending, "running": naming.StateRunning, "stopping": naming.StateStopping,
	"stopped": naming.StateStopped, "shutting-down": naming.StateShuttingDown, "terminated": naming.StateTerminated,
}

// Parse reads one SQS message body. A well-formed event of another kind
// or source is KindOther with a nil error; a body that is not an
// EventBridge event, or an EC2 event with a bad instance id or state, is
// an error naming the field and value.
func Parse(body string) (Event, error) {
	var env envelope
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		return Event{}, fmt.Errorf("message body is not an EventBridge event: %w", err)
	}
	if env.DetailType == "" {
		return Event{}, fmt.Errorf("message body has no detail-type: not an EventBridge event")
	}
	kind, ok := detailTypes[env.DetailType]
	if !ok || env.Source != "aws.ec2" {
		return Event{Kind: KindOther}, nil
	}
	ev := Event{Kind: kind, InstanceID: env.Detail.InstanceID}
	if !instanceIDPattern.MatchString(ev.InstanceID) {
		return Event{}, fmt.Errorf("%s: detail.instance-id %q is not an instance id", env.DetailType, ev.InstanceID)
	}
	if kind == KindStateChange {
		if ev.State, ok = states[env.Detail.State]; !ok {
			return Event{}, fmt.Errorf("%s: detail.state %q is not an instance state", env.DetailType, env.Detail.State)
		}
	}
	if env.Time != "" {
		t, err := time.Parse(time.RFC3339, env.Time)
		if err != nil {
			return Event{}, fmt.Errorf("%s: time %q: %w", env.DetailType, env.Time, err)
		}
		ev.Time = t
	}
	return ev, nil
}
