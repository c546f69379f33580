// Command gkessh gets you onto Compute Engine and GKE nodes over SSH through
// Identity-Aware Proxy, with no public IP and no gcloud.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/gkessh/gkessh/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args, cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
