package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/attestclient"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/nodeclaim"
)

// Paths the controller serves beside the feed (defined with the node's
// client, which the agent build links without this package's EC2 and
// ledger code).
const (
	RegisterPath = attestclient.RegisterPath
	PromotePath  = attestclient.PromotePath
)

// EC2 tags the controller checks: the instance must be tagged with the
// service it claims in (and its type, when tagged).
const (
	TagService     = "aerostat:service"
	TagServiceType = "aerostat:service-type"
)

// Request is what a node posts; Response the controller's answer.
type (
	Request  = attestclient.Request
	Response = attestclient.Response
)

// Store is what the handler needs of the ledger.
type Store interface {
	ledger.Store
	ledger.PolicyStore
	ledger.AttestationStore
}

// ServerOptions configure NewHandler.
type ServerOptions struct {
	Bundle Bundle
	// EC2 answers DescribeInstances for one instance id; it must not be a
	// cache (the check is about now).
	EC2   cloud.Cloud
	Store Store
	// Accounts, when set, are the only AWS accounts whose instances may
	// attest.
	Accounts []string
	// DefaultHoldBack applies to services without a stored policy.
	DefaultHoldBack time.Duration
	// AliasRules are the controller's alias rules (AliasGuard.Rules).
	AliasRules func([]naming.Record) naming.AliasRules
	Clock      clock.PassiveClock
	Logger     logr.Logger
}

// Handler serves RegisterPath and PromotePath.
type Handler struct{ o ServerOptions }

// NewHandler checks opts and returns the handler.
func NewHandler(o ServerOptions) (*Handler, error) {
	if len(o.Bundle) == 0 || o.EC2 == nil || o.Store == nil {
		return nil, errors.New("attestation needs a certificate bundle, an EC2 client and the ledger")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return &Handler{o: o}, nil
}

// Mount routes the attestation paths to h and everything else to next (the
// guarded feed): nodes attest with their identity document, not a feed token.
func Mount(next http.Handler, h *Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(RegisterPath, h)
	mux.Handle(PromotePath, h)
	mux.Handle("/", next)
	return mux
}

// Limits shared with the node's client.
const (
	maxBody            = attestclient.MaxBody
	minNonce, maxNonce = attestclient.MinNonce, attestclient.MaxNonce
)

// maxClockSkew is how far in the future a pendingTime may be.
const maxClockSkew = 5 * time.Minute

// httpError carries the status a failure answers with.
type httpError struct {
	status int
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func fail(status int, err error) error { return &httpError{status, err} }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, Response{Error: "POST only"})
		return
	}
	var req Request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, Response{Error: fmt.Sprintf("request body: %v", err)})
		return
	}
	promote := r.URL.Path == PromotePath
	name, err := h.Attest(r.Context(), req, promote)
	log := h.o.Logger.WithValues("promote", promote, "remote", r.RemoteAddr)
	if err != nil {
		status := http.StatusServiceUnavailable
		var he *httpError
		switch {
		case errors.As(err, &he):
			status = he.status
		case errors.Is(err, ErrRefused):
			status = http.StatusForbidden
		case errors.Is(err, nodeclaim.ErrAlreadyMaster):
			status = http.StatusConflict
		case errors.Is(err, nodeclaim.ErrNotMasterful):
			status = http.StatusBadRequest
		}
		log.Info("node attestation failed", "status", status, "error", err.Error())
		writeJSON(w, status, Response{Error: err.Error()})
		return
	}
	log.V(1).Info("node attested", "name", name)
	writeJSON(w, http.StatusOK, Response{Name: name})
}

func writeJSON(w http.ResponseWriter, status int, v Response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Attest verifies req and claims (or promotes) the instance's name. Errors
// wrapping ErrRefused are refusals (the identity or its claim is not
// accepted); others are bad input or store/EC2 failures.
func (h *Handler) Attest(ctx context.Context, req Request, promote bool) (string, error) {
	info, err := naming.ParseInfo([]byte(req.Info))
	if err != nil {
		return "", fail(http.StatusBadRequest, fmt.Errorf("info: %w", err))
	}
	if n := len(req.Nonce); n < minNonce || n > maxNonce {
		return "", fail(http.StatusBadRequest, fmt.Errorf("nonce: %d characters, want %d to %d", n, minNonce, maxNonce))
	}
	doc, err := Verify(h.o.Bundle, []byte(req.Signed))
	if err != nil {
		return "", err
	}
	if err := h.checkDocument(doc, req); err != nil {
		return "", err
	}
	inst, err := h.checkEC2(ctx, doc, info)
	if err != nil {
		return "", err
	}
	if err := h.bindNonce(ctx, doc, req.Nonce); err != nil {
		return "", err
	}
	holdBack, _, err := nodeclaim.HoldBack(ctx, h.o.Store, info.Service, h.o.DefaultHoldBack)
	if err != nil {
		return "", err
	}
	c := naming.NodeClaim{Info: info, InstanceID: doc.InstanceID, IP: inst.PrivateIP, HoldBack: holdBack}
	if promote {
		c.DesiredMaster = doc.InstanceID
	}
	ctx = logr.NewContext(ctx, h.o.Logger)
	return nodeclaim.Claim(ctx, c, nodeclaim.Options{Store: h.o.Store, AliasRules: h.o.AliasRules, Clock: h.o.Clock})
}

func (h *Handler) checkDocument(doc Document, req Request) error {
	if req.InstanceID != "" && req.InstanceID != doc.InstanceID {
		return refuse("the signed document is instance %s's, the request names %s", doc.InstanceID, req.InstanceID)
	}
	if len(h.o.Accounts) > 0 && !slices.Contains(h.o.Accounts, doc.AccountID) {
		return refuse("account %q is not allowed to attest", doc.AccountID)
	}
	if doc.PendingTime.After(h.o.Clock.Now().Add(maxClockSkew)) {
		return refuse("pendingTime %s is in the future", doc.PendingTime.Format(time.RFC3339))
	}
	return nil
}

// checkEC2 asks EC2 about the instance: it must exist and run, have the
// document's private IP, have started when the document says (an older
// document predates a stop and start), and be tagged with the service.
func (h *Handler) checkEC2(ctx context.Context, doc Document, info naming.Info) (naming.Instance, error) {
	found, err := h.o.EC2.List(ctx, cloud.Filter{Name: "instance-id", Values: []string{doc.InstanceID}})
	if err != nil {
		return naming.Instance{}, fmt.Errorf("describing instance %s: %w", doc.InstanceID, err)
	}
	i := slices.IndexFunc(found, func(in naming.Instance) bool { return in.ID == doc.InstanceID })
	if i < 0 {
		return naming.Instance{}, refuse("instance %s: not found in EC2", doc.InstanceID)
	}
	inst := found[i]
	switch {
	case inst.State != naming.StateRunning:
		return inst, refuse("instance %s is %s in EC2, not running", inst.ID, inst.State)
	case inst.PrivateIP != doc.PrivateIP:
		return inst, refuse("instance %s: the document says private IP %s, EC2 says %q", inst.ID, doc.PrivateIP, inst.PrivateIP)
	case doc.PendingTime.Before(inst.LaunchTime.Truncate(time.Second)):
		return inst, refuse("instance %s: stale document (pendingTime %s, EC2 launch time %s)", inst.ID,
			doc.PendingTime.Format(time.RFC3339), inst.LaunchTime.Format(time.RFC3339))
	case inst.Tags[TagService] != info.Service:
		return inst, refuse("instance %s is tagged %s=%q, not %q: only the service's own instances may claim its names", inst.ID, TagService, inst.Tags[TagService], info.Service)
	}
	if st := inst.Tags[TagServiceType]; st != "" {
		if scheme, err := naming.ParseScheme(st); err != nil || scheme != info.Scheme {
			return inst, refuse("instance %s is tagged %s=%q, the info file says %s", inst.ID, TagServiceType, st, info.Scheme)
		}
	}
	return inst, nil
}

// bindNonce binds the nonce to the instance on first use and refuses any
// other nonce afterwards: a copied document is useless without the node's
// nonce. A document older than the newest one seen is refused too.
func (h *Handler) bindNonce(ctx context.Context, doc Document, nonce string) error {
	sum := sha256.Sum256([]byte(nonce))
	hash := hex.EncodeToString(sum[:])
	stored, err := h.o.Store.BindAttestation(ctx, ledger.Attestation{InstanceID: doc.InstanceID, NonceHash: hash, PendingTime: doc.PendingTime})
	if err != nil {
		return err
	}
	if stored.NonceHash != hash {
		return refuse("instance %s attested before with another nonce (a replayed document; if the node lost its nonce file, delete _id %q from the ledger's %s collection)",
			doc.InstanceID, doc.InstanceID, "attestations")
	}
	switch {
	case doc.PendingTime.Before(stored.PendingTime):
		return refuse("instance %s: stale document (pendingTime %s, already seen %s)", doc.InstanceID,
			doc.PendingTime.Format(time.RFC3339), stored.PendingTime.Format(time.RFC3339))
	case doc.PendingTime.After(stored.PendingTime):
		return h.o.Store.AdvanceAttestation(ctx, doc.InstanceID, hash, doc.PendingTime)
	}
	return nil
}
