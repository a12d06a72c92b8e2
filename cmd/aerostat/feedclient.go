package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/aerostat-io/aerostat/internal/feed"
)

// feedClientFlags are how a node or the CLI reaches the feed.
type feedClientFlags struct {
	caFile, tokenFile string
}

func (f *feedClientFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.caFile, "feed-ca-file", "", "CA certificate (PEM) the feed's certificate must chain to (default: the system's roots)")
	fl.StringVar(&f.tokenFile, "feed-token-file", "", "bearer token for the feed, read at every request (a projected ServiceAccount token or a --feed-tokens-file token)")
}

// client returns the HTTP client for the feed at url.
func (f *feedClientFlags) client(url string, timeout time.Duration) (*http.Client, error) {
	if f.tokenFile != "" && strings.HasPrefix(url, "http://") {
		return nil, fmt.Errorf("--feed %q with --feed-token-file: refusing to send a token over plain HTTP (use https://)", url)
	}
	return feed.NewHTTPClient(f.caFile, f.tokenFile, timeout)
}
