//go:build !agentonly

package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/aerostat-io/aerostat/internal/store/embedded"
)

// newStoreCmd runs the embedded store as a server: the single-host
// deployment, in the place 1.x's admin-master ran MongoDB.
func newStoreCmd() *cobra.Command {
	var opts embedded.Options
	var certFile, keyFile, clientCA string
	var logs logFlags
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Run the embedded MongoDB-wire store (FerretDB, SQLite) until SIGINT/SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log, err := logs.logger(os.Stderr)
			if err != nil {
				return err
			}
			opts.Logger = log.WithName("store")
			tlsCfg, err := storeTLS(certFile, keyFile, clientCA)
			if err != nil {
				return err
			}
			opts.TLS = tlsCfg
			srv, err := embedded.Start(ctx, opts)
			if err != nil {
				return err
			}
			log.Info("store listening", "uri", srv.URI(), "dataDir", opts.DataDir)
			if _, err := fmt.Fprintln(cmd.OutOrStdout(), srv.URI()); err != nil {
				_ = srv.Close()
				return err
			}
			<-ctx.Done()
			log.Info("store stopping")
			return srv.Close()
		},
	}
	cmd.Flags().StringVar(&opts.DataDir, "data-dir", "/var/lib/aerostat/store", "directory for the SQLite files (created if missing)")
	cmd.Flags().StringVar(&opts.Listen, "listen", "127.0.0.1:27017", "TCP address to serve on (port 0 picks a free one); a non-loopback address needs --client-ca-file (or --insecure)")
	cmd.Flags().StringVar(&certFile, "tls-cert-file", "", "serve TLS with this certificate (PEM)")
	cmd.Flags().StringVar(&keyFile, "tls-key-file", "", "private key of --tls-cert-file (PEM)")
	cmd.Flags().StringVar(&clientCA, "client-ca-file", "", "require client certificates signed by these CAs (PEM): how clients authenticate (FerretDB v1 on SQLite has no users)")
	cmd.Flags().BoolVar(&opts.Insecure, "insecure", false, "allow a non-loopback --listen without client certificates (only where a firewall or NetworkPolicy admits the controller alone)")
	cmd.Flags().IntVar(&opts.MaxConns, "max-conns", 256, "most client connections open at once")
	logs.register(cmd.Flags())
	return cmd
}

// storeTLS builds the store's TLS: a server certificate, and client
// certificates required when clientCA is given.
func storeTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" && clientCA == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("--tls-cert-file and --tls-key-file go together (and --client-ca-file needs them)")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert-file %q, --tls-key-file %q: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("--client-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--client-ca-file %q: no PEM certificate in it", clientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
