package cloud_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
)

func TestSelfIdentity(t *testing.T) {
	isolateAWS(t)
	want := cloud.Identity{InstanceID: "i-0123456789abcdef0", PrivateIP: "10.1.2.3", Region: "eu-west-1"}
	tests := map[string]struct {
		id      cloud.Identity
		wantErr bool
	}{
		"ok":           {want, false},
		"no ip":        {cloud.Identity{InstanceID: want.InstanceID, PrivateIP: "", Region: "eu-west-1"}, true},
		"bad ip":       {cloud.Identity{InstanceID: want.InstanceID, PrivateIP: "10.1.2", Region: "eu-west-1"}, true},
		"bad id":       {cloud.Identity{InstanceID: "test-instance", PrivateIP: "10.1.2.3", Region: "eu-west-1"}, true},
		"empty region": {cloud.Identity{InstanceID: want.InstanceID, PrivateIP: "10.1.2.3"}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			imds := fake.NewIMDS(tc.id)
			srv := httptest.NewServer(imds)
			defer srv.Close()
			got, err := cloud.SelfIdentity(context.Background(), cloud.IMDSOptions{Endpoint: srv.URL})
			if (err != nil) != tc.wantErr {
				t.Fatalf("SelfIdentity = %+v, %v; want error %v", got, err, tc.wantErr)
			}
			if err == nil && got != tc.id {
				t.Errorf("SelfIdentity = %+v, want %+v", got, tc.id)
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
