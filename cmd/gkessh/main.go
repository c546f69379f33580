// Command gkessh gets you onto Compute Engine and GKE nodes over SSH through
// Identity-Aware Proxy, with no public IP and no gcloud.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/gkessh/gkessh/internal/cli"
	"github.com/gkessh/gkessh/internal/devprof"
)

func main() {
	stopProfile := devprof.Start()
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	// ssh sends its ProxyCommand SIGHUP when it exits: stop cleanly, so the
	// websocket is closed and the relay lets the session go at once instead
	// of holding it for a reconnect. Not when started with SIGHUP ignored
	// (nohup): Notify would undo that.
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	code := cli.Main(ctx, os.Args, cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	stopProfile()
	os.Exit(code)
}
