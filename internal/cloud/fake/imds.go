package fake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"github.com/aerostat-io/aerostat/internal/cloud"
)

// IMDS is an IMDSv2 instance metadata service for one instance: a session
// token from PUT /latest/api/token is required (401 without it) and the
// instance-id, local-ipv4, placement/region and identity document paths
// are served.
type IMDS struct {
	id cloud.Identity

	mu     sync.Mutex
	tokens map[string]bool
	gets   int
}

// NewIMDS returns a metadata service describing id.
func NewIMDS(id cloud.Identity) *IMDS {
	return &IMDS{id: id, tokens: map[string]bool{}}
}

// Gets is the number of metadata reads (token requests excluded).
func (m *IMDS) Gets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}

func (m *IMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut || r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") == "" {
			http.Error(w, "token requests must be PUT with a TTL", http.StatusBadRequest)
			return
		}
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		tok := hex.EncodeToString(b)
		m.mu.Lock()
		m.tokens[tok] = true
		m.mu.Unlock()
		w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"))
		_, _ = w.Write([]byte(tok))
		return
	}
	m.mu.Lock()
	ok := m.tokens[r.Header.Get("X-Aws-Ec2-Metadata-Token")]
	if ok {
		m.gets++
	}
	m.mu.Unlock()
	if !ok {
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "", http.StatusMethodNotAllowed)
		return
	}
	var body string
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/latest/meta-data/instance-id":
		body = m.id.InstanceID
	case "/latest/meta-data/local-ipv4":
		body = m.id.PrivateIP
	case "/latest/meta-data/placement/region":
		body = m.id.Region
	case "/latest/meta-data/placement/availability-zone":
		body = m.id.Region + "a"
	case "/latest/dynamic/instance-identity/document":
		b, _ := json.Marshal(map[string]string{
			"instanceId": m.id.InstanceID, "privateIp": m.id.PrivateIP,
			"region": m.id.Region, "availabilityZone": m.id.Region + "a",
		})
		body = string(b)
	default:
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write([]byte(body))
}
