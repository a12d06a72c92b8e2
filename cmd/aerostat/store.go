package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/aerostat-io/aerostat/internal/store/embedded"
)

// newStoreCmd runs the embedded store as a server: the single-host
// deployment, in the place 1.x's admin-master ran MongoDB.
func newStoreCmd() *cobra.Command {
	var opts embedded.Options
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Run the embedded MongoDB-wire store (FerretDB, SQLite) until SIGINT/SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := zap.New()
			opts.Logger = log.WithName("store")
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
	cmd.Flags().StringVar(&opts.Listen, "listen", "127.0.0.1:27017", "TCP address to serve on (port 0 picks a free one)")
	return cmd
}
