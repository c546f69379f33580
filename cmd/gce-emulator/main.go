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
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
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
	background := flag.Bool("background", false, `serve in the background and print the lines to eval, with GCE_EMULATOR_PID to stop it by and GCE_EMULATOR_LOG, its output, as ssh-agent does: eval "$(gce-emulator --background)"; kill $GCE_EMULATOR_PID`)
	flag.Parse()
	var err error
	if *background {
		err = startBackground(*envFile)
	} else {
		err = run(*project, *nodes, *sshd, *listen, *envFile, *delay, *verbose)
	}
	if err != nil {
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

// startBackground runs this command again without --background, in a
// session of its own (no terminal hang-up reaches it) with its output in a
// log file, waits until it has written its env file, and prints that with
// its pid and log file: what eval needs. The emulator removes the env file
// when it stops; the log stays for whoever wants to read it.
func startBackground(envFile string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var args []string
	for _, a := range os.Args[1:] {
		if name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); name != "background" {
			args = append(args, a)
		}
	}
	if envFile == "" {
		f, err := os.CreateTemp("", "gce-emulator-*.env")
		if err != nil {
			return err
		}
		f.Close()
		os.Remove(f.Name()) // the emulator writes it when it is ready
		envFile = f.Name()
		args = append(args, "--env-file", envFile)
	}
	logFile, err := os.CreateTemp("", "gce-emulator-*.log")
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if env, err := os.ReadFile(envFile); err == nil {
			fmt.Printf("%sexport GCE_EMULATOR_PID=%d GCE_EMULATOR_LOG=%s\n", env, cmd.Process.Pid, logFile.Name())
			return nil
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logFile.Name())
			return fmt.Errorf("the emulator stopped before it was ready (%v):\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return fmt.Errorf("the emulator was not ready after 30s; see %s", logFile.Name())
		}
	}
}
