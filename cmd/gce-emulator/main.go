// Command gce-emulator serves a local stand-in for the Google services gkessh
// talks to, and prints the shell lines that point gkessh at it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gkessh/gkessh/emulator"
)

func main() {
	project := flag.String("project", "demo-project", "project name")
	nodes := flag.Int("nodes", 3, "GKE-looking nodes to create")
	sshd := flag.String("sshd", "builtin", "node SSH server: builtin or openssh")
	listen := flag.String("listen", "127.0.0.1:0", "address to serve the Compute API, IAP relay and control API on")
	envFile := flag.String("env-file", "", "also write the export lines to this file")
	delay := flag.Duration("propagation-delay", time.Second, "how long guest agents take to install a new key")
	verbose := flag.Bool("v", false, "log requests")
	flag.Parse()
	if err := run(*project, *nodes, *sshd, *listen, *envFile, *delay, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "gce-emulator:", err)
		os.Exit(1)
	}
}

func run(project string, nodes int, sshd, listen, envFile string, delay time.Duration, verbose bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := emulator.Config{Project: project, Nodes: nodes, SSHD: sshd, PropagationDelay: delay}
	if verbose {
		cfg.Logf = log.New(os.Stderr, "gce-emulator: ", log.Lmicroseconds).Printf
	}
	srv, err := emulator.New(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	tokenFile := filepath.Join(srv.Dir(), "access-token")
	if err := os.WriteFile(tokenFile, []byte(srv.Token()+"\n"), 0o600); err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	env := fmt.Sprintf("export GKESSH_COMPUTE_ENDPOINT=%s/compute/v1/ GKESSH_IAP_ENDPOINT=ws://%s GKESSH_ACCESS_TOKEN_FILE=%s CLOUDSDK_CORE_PROJECT=%s\n",
		base, ln.Addr(), tokenFile, project)
	if envFile != "" {
		// Written whole and renamed, so a reader polling for it never sees half.
		tmp := envFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(env), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, envFile); err != nil {
			return err
		}
		defer os.Remove(envFile)
	}
	fmt.Print(env)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
