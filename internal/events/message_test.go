package events

import (
	"strings"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/naming"
)

var at = time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	const id = "i-0123456789abcdef0"
	tests := map[string]struct {
		body    string
		want    Event
		wantErr string
	}{
		"state change": {body: fake.StateChangeBody(id, naming.StateTerminated, at),
			want: Event{Kind: KindStateChange, InstanceID: id, State: naming.StateTerminated, Time: at}},
		"running": {body: fake.StateChangeBody(id, naming.StateRunning, at),
			want: Event{Kind: KindStateChange, InstanceID: id, State: naming.StateRunning, Time: at}},
		"spot interruption": {body: fake.SpotInterruptionBody(id, at), want: Event{Kind: KindSpotInterruption, InstanceID: id, Time: at}},
		"rebalance":         {body: fake.RebalanceBody(id, at), want: Event{Kind: KindRebalance, InstanceID: id, Time: at}},
		"other detail type": {body: `{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","detail":{}}`, want: Event{Kind: KindOther}},
		"other source": {body: `{"version":"0","detail-type":"EC2 Instance State-change Notification","source":"my.app","detail":{"instance-id":"i-0123456789abcdef0","state":"terminated"}}`,
			want: Event{Kind: KindOther}},
		"not json":        {body: "hello", wantErr: "not an EventBridge event"},
		"no detail type":  {body: `{"source":"aws.ec2"}`, wantErr: "no detail-type"},
		"bad instance id": {body: strings.Replace(fake.StateChangeBody(id, naming.StateRunning, at), id, "i-XYZ; rm -rf /", 1), wantErr: `detail.instance-id "i-XYZ; rm -rf /"`},
		"bad state":       {body: strings.Replace(fake.StateChangeBody(id, naming.StateRunning, at), `"running"`, `"exploded"`, 1), wantErr: `detail.state "exploded"`},
		"bad time":        {body: strings.Replace(fake.StateChangeBody(id, naming.StateRunning, at), at.Format(time.RFC3339), "yesterday", 1), wantErr: `time "yesterday"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tc.body)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Parse = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(fake.StateChangeBody("i-0123456789abcdef0", naming.StateRunning, at))
	f.Add(fake.SpotInterruptionBody("i-0123456789abcdef0", at))
	f.Add(`{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{"instance-id":"i-1","state":1}}`)
	f.Add("")
	f.Fuzz(func(t *testing.T, body string) {
		ev, err := Parse(body)
		if err != nil {
			return
		}
		switch ev.Kind {
		case KindOther:
			if ev.InstanceID != "" {
				t.Fatalf("other event with an instance id: %+v", ev)
			}
		case KindStateChange, KindSpotInterruption, KindRebalance:
			if !instanceIDPattern.MatchString(ev.InstanceID) {
				t.Fatalf("accepted instance id %q", ev.InstanceID)
			}
			if ev.Kind == KindStateChange && states[string(ev.State)] != ev.State {
				t.Fatalf("accepted state %q", ev.State)
			}
		default:
			t.Fatalf("kind %q", ev.Kind)
		}
	})
}
