package fake

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestServerErrors(t *testing.T) {
	fleet := NewFleet(clocktesting.NewFakeClock(t0))
	ids := fleet.Launch(3, nil)
	srv := NewServer(fleet)
	defer srv.Close()
	tests := map[string]struct {
		inject     func()
		form       url.Values
		wantStatus int
		wantCode   string
	}{
		"max results too big": {nil, url.Values{"Action": {"DescribeInstances"}, "MaxResults": {"1001"}}, 400, "InvalidParameterValue"},
		"bad filter":          {nil, url.Values{"Action": {"DescribeInstances"}, "Filter.1.Name": {"colour"}, "Filter.1.Value.1": {"x"}}, 400, "InvalidParameterValue"},
		"bad token":           {nil, url.Values{"Action": {"DescribeInstances"}, "NextToken": {"%%%"}}, 400, "InvalidParameterValue"},
		"unknown id":          {nil, url.Values{"Action": {"DescribeInstances"}, "InstanceId.1": {"i-00000000000000bad"}}, 400, CodeNotFound},
		"known id":            {nil, url.Values{"Action": {"DescribeInstances"}, "InstanceId.1": {ids[0]}}, 200, ""},
		"unknown action":      {nil, url.Values{"Action": {"RunInstances"}}, 400, "InvalidAction"},
		"throttled":           {func() { srv.ThrottleNext(1) }, url.Values{"Action": {"DescribeInstances"}}, 503, CodeThrottled},
		"unavailable":         {func() { srv.FailNext(1, 503) }, url.Values{"Action": {"DescribeInstances"}}, 503, CodeUnavailable},
		"create tags":         {nil, url.Values{"Action": {"CreateTags"}, "ResourceId.1": {ids[1]}, "Tag.1.Key": {"Name"}, "Tag.1.Value": {"web-1"}}, 200, ""},
		"create tags no tags": {nil, url.Values{"Action": {"CreateTags"}, "ResourceId.1": {ids[1]}}, 400, "MissingParameter"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv.Reset()
			if tc.inject != nil {
				tc.inject()
			}
			tc.form.Set("Version", "2016-11-15")
			resp, err := http.PostForm(srv.URL, tc.form)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantCode != "" && !strings.Contains(string(body), "<Response><Errors><Error><Code>"+tc.wantCode+"</Code>") {
				t.Errorf("body %s lacks code %s", body, tc.wantCode)
			}
			if n := srv.Calls(tc.form.Get("Action")); n != 1 {
				t.Errorf("calls = %d, want 1", n)
			}
		})
	}
	if in, _ := fleet.Instance(ids[1]); in.Tags["Name"] != "web-1" {
		t.Errorf("CreateTags did not tag: %v", in.Tags)
	}
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET status %d, want 405", resp.StatusCode)
	}
}
