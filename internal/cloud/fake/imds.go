package fake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aerostat-io/aerostat/internal/cloud"
)

// IMDS is an IMDSv2 instance metadata service for one instance: a session
// token from PUT /latest/api/token is required (401 without it) and the
// instance-id, local-ipv4, placement/region and identity document paths
// are served, and once Sign is called the document's rsa2048 signature.
type IMDS struct {
	id cloud.Identity

	mu      sync.Mutex
	tokens  map[string]bool
	gets    int
	signer  *IdentitySigner
	pending time.Time
}

// FakeAccountID is the accountId of the fake's identity documents.
const FakeAccountID = "123456789012"

// Sign makes m serve its identity document signed with s under
// /latest/dynamic/instance-identity/rsa2048 (404 until then), with
// pending as the document's pendingTime (EC2: the instance's last start).
func (m *IMDS) Sign(s *IdentitySigner, pending time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.signer, m.pending = s, pending.UTC().Truncate(time.Second)
}

// Document is the identity document m serves.
func (m *IMDS) Document() []byte {
	m.mu.Lock()
	pending := m.pending
	m.mu.Unlock()
	b, _ := json.Marshal(map[string]any{
		"instanceId": m.id.InstanceID, "privateIp": m.id.PrivateIP,
		"region": m.id.Region, "availabilityZone": m.id.Region + "a",
		"accountId": FakeAccountID, "pendingTime": pending.Format(time.RFC3339),
		"version": "2017-09-30", "instanceType": "t3.micro", "architecture": "x86_64",
	})
	return b
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
		body = string(m.Document())
	case "/latest/dynamic/instance-identity/rsa2048":
		m.mu.Lock()
		s := m.signer
		m.mu.Unlock()
		if s == nil {
			http.NotFound(w, r)
			return
		}
		sig, err := s.Sign(m.id.Region, m.Document())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		body = sig
	default:
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write([]byte(body))
}
