package imds_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/imds"
)

func TestIdentity(t *testing.T) {
	want := cloud.Identity{InstanceID: "i-0123456789abcdef0", PrivateIP: "10.1.2.3", Region: "eu-west-1"}
	tests := map[string]struct {
		id      cloud.Identity
		wantErr string
	}{
		"ok":           {id: want},
		"no ip":        {id: cloud.Identity{InstanceID: want.InstanceID, Region: "eu-west-1"}, wantErr: `local-ipv4 "" is not an IP address`},
		"bad ip":       {id: cloud.Identity{InstanceID: want.InstanceID, PrivateIP: "10.1.2", Region: "eu-west-1"}, wantErr: `local-ipv4 "10.1.2"`},
		"bad id":       {id: cloud.Identity{InstanceID: "test-instance", PrivateIP: "10.1.2.3", Region: "eu-west-1"}, wantErr: `instance-id "test-instance"`},
		"empty region": {id: cloud.Identity{InstanceID: want.InstanceID, PrivateIP: "10.1.2.3"}, wantErr: "empty region"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(fake.NewIMDS(tc.id))
			defer srv.Close()
			got, err := imds.New(srv.URL).Identity(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Identity = %+v, %v; want an error naming %s", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.id {
				t.Errorf("Identity = %+v, %v; want %+v", got, err, tc.id)
			}
		})
	}
}

// TestEndpointFromEnvironment: without an endpoint the SDKs' variable
// names the service (the e2e and containers point it elsewhere).
func TestEndpointFromEnvironment(t *testing.T) {
	srv := httptest.NewServer(fake.NewIMDS(cloud.Identity{InstanceID: "i-0123456789abcdef0", PrivateIP: "10.1.2.3", Region: "us-east-1"}))
	defer srv.Close()
	t.Setenv(imds.EndpointEnv, srv.URL+"/")
	got, err := imds.New("").Get(context.Background(), "meta-data/placement/region")
	if err != nil || got != "us-east-1" {
		t.Errorf("Get = %q, %v; want us-east-1", got, err)
	}
}

func TestRefusedAnswers(t *testing.T) {
	tests := map[string]struct {
		handler http.HandlerFunc
		wantErr string
	}{
		"no token (IMDSv2 disabled)": {handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "", http.StatusForbidden) }, wantErr: "session token: PUT api/token: 403"},
		"server error": {handler: func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut {
				_, _ = w.Write([]byte("tok"))
				return
			}
			http.Error(w, "", http.StatusInternalServerError)
		}, wantErr: "meta-data/instance-id: GET meta-data/instance-id: 500"},
		"endless answer": {handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(strings.Repeat("x", 65<<10)))
		}, wantErr: "larger than 64 KiB"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			_, err := imds.New(srv.URL).Get(context.Background(), "meta-data/instance-id")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Get = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestFakeIMDSNeedsToken(t *testing.T) {
	srv := httptest.NewServer(fake.NewIMDS(cloud.Identity{InstanceID: "i-0123456789abcdef0"}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/latest/meta-data/instance-id")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("IMDSv1 GET status = %d, want 401", resp.StatusCode)
	}
}
