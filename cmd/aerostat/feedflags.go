//go:build !agentonly

package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"

	"github.com/aerostat-io/aerostat/internal/feed"
)

// feedServeFlags secure the controller's feed: TLS, and who may read it.
type feedServeFlags struct {
	certFile, keyFile, writeCert string
	tokensFile                   string
	serviceAccounts              []string
	audience                     string
	maxPerClient                 int
	insecure                     bool
}

func (f *feedServeFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.certFile, "feed-tls-cert-file", "", "feed TLS certificate (PEM); with neither file a self-signed one is made (see --feed-tls-write-cert)")
	fl.StringVar(&f.keyFile, "feed-tls-key-file", "", "feed TLS private key (PEM)")
	fl.StringVar(&f.writeCert, "feed-tls-write-cert", "", "where to write the generated self-signed certificate, for agents' --feed-ca-file")
	fl.StringVar(&f.tokensFile, "feed-tokens-file", "", "standalone: bearer tokens allowed to read the feed, one a line: <token> <name> [<node>] (a token with a node may report only as that node)")
	fl.StringSliceVar(&f.serviceAccounts, "feed-service-accounts", nil, "Kubernetes: ServiceAccounts (namespace/name) whose projected tokens may read the feed, checked with TokenReview")
	fl.StringVar(&f.audience, "feed-audience", feed.DefaultAudience, "audience the agents' projected tokens must be issued for")
	fl.IntVar(&f.maxPerClient, "feed-max-per-client", 4, "requests one client may have in flight")
	fl.BoolVar(&f.insecure, "feed-insecure", false, "serve the feed over plain HTTP without authentication (trusted networks and tests only)")
}

// users turns namespace/name into ServiceAccount user names.
func (f *feedServeFlags) users() ([]string, error) {
	var out []string
	for _, sa := range f.serviceAccounts {
		ns, name, ok := strings.Cut(sa, "/")
		if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("--feed-service-accounts %q: want namespace/name", sa)
		}
		out = append(out, "system:serviceaccount:"+ns+":"+name)
	}
	return out, nil
}

// secure wraps the feed handler in authentication and sets the server's
// TLS. kube builds a Kubernetes client (only called for TokenReview).
func (f *feedServeFlags) secure(srv *http.Server, fh http.Handler, log logr.Logger, kube func() (kubernetes.Interface, error)) error {
	if f.insecure {
		if f.tokensFile != "" || len(f.serviceAccounts) > 0 || f.certFile != "" {
			return errors.New("--feed-insecure cannot be combined with feed TLS or authentication flags")
		}
		log.Info("the feed is served over plain HTTP without authentication (--feed-insecure)")
		return nil
	}
	var auth feed.Authenticator
	switch {
	case f.tokensFile != "" && len(f.serviceAccounts) > 0:
		return errors.New("--feed-tokens-file and --feed-service-accounts: choose one")
	case f.tokensFile != "":
		tf, err := feed.LoadTokenFile(f.tokensFile)
		if err != nil {
			return fmt.Errorf("--feed-tokens-file: %w", err)
		}
		auth = tf
	case len(f.serviceAccounts) > 0:
		users, err := f.users()
		if err != nil {
			return err
		}
		cs, err := kube()
		if err != nil {
			return fmt.Errorf("--feed-service-accounts: %w", err)
		}
		if auth, err = feed.NewTokenReview(feed.TokenReviewOptions{Client: cs.AuthenticationV1().TokenReviews(), Audience: f.audience, Users: users}); err != nil {
			return err
		}
	default:
		return errors.New("the feed needs authentication: --feed-service-accounts (Kubernetes) or --feed-tokens-file (standalone); --feed-insecure serves it open")
	}
	host, _ := os.Hostname()
	tlsCfg, err := feed.ServerTLS(feed.ServerTLSOptions{CertFile: f.certFile, KeyFile: f.keyFile, WriteCert: f.writeCert,
		Hosts: []string{"localhost", "127.0.0.1", "::1", host}})
	if err != nil {
		return err
	}
	srv.TLSConfig = tlsCfg
	srv.Handler = feed.Guard(fh, feed.GuardOptions{Auth: auth, MaxPerClient: f.maxPerClient, Logger: log})
	return nil
}
