// Command pause is the e2e cluster's pod sandbox image: it holds a pod's
// namespaces open and sleeps until signalled, like Kubernetes' own pause
// (no registry is reachable here to pull that one).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
