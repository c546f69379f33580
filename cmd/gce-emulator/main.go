//go:build unix

// Command gce-emulator serves a local stand-in for the Google services gkessh
// talks to, and prints the shell lines that point gkessh at it.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/devprof"
)

// emulatorGCPercent is the emulator's GOGC: the heap may grow to 5 times
// what is live between collections, not 2 times.
const emulatorGCPercent = 400

func main() {
	project := flag.String("project", "demo-project", "project name")
	nodes := flag.Int("nodes", 3, "GKE-looking nodes to create")
	sshd := flag.String("sshd", "builtin", "node SSH server: builtin or openssh")
	listen := flag.String("listen", "127.0.0.1:0", "address to serve the Compute API, IAP relay and control API on")
	envFile := flag.String("env-file", "", "also write the export lines to this file")
	delay := flag.Duration("propagation-delay", time.Second, "how long guest agents take to install a new key")
	stateDir := flag.String("state-dir", "", "keep state in this directory (created if needed): nodes keep their host keys and ids across restarts; default a temporary directory, removed on exit, and ids of each run's own")
	verbose := flag.Bool("v", false, "log requests")
	adcFile := flag.String("adc-file", "", "write a service-account key file for the emulator's token endpoint here, for GOOGLE_APPLICATION_CREDENTIALS")
	lifetime := flag.Duration("token-lifetime", emulator.DefaultTokenLifetime, "how long the tokens the emulator mints live")
	latency := flag.Duration("token-latency", 0, "how long the token endpoint takes to answer")
	background := flag.Bool("background", false, `serve in the background and print the lines to eval, with GCE_EMULATOR_LOG, its output (removed when it stops), as ssh-agent does: eval "$(gce-emulator --background)"`)
	tlsOn := flag.Bool("tls", false, "serve HTTPS and wss:// under a CA of the emulator's own, written to ca.pem in its directory; the lines name it (CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE, GCE_EMULATOR_CA_FILE)")
	mtls := flag.Bool("mtls", false, "--tls with certificate-based access: Google's APIs and the relay refuse a client without a certificate from the emulator's device CA, as Google does; serve the mTLS port (GCE_EMULATOR_MTLS_URL) and write a client certificate and key (GCE_EMULATOR_CLIENT_CERT, GCE_EMULATOR_CLIENT_KEY)")
	mtlsListen := flag.String("mtls-listen", "127.0.0.1:0", "address of the mTLS port, with --mtls")
	stop := flag.Bool("stop", false, `stop the emulator GCE_EMULATOR_PID names and print the line that unsets what its lines set, as ssh-agent -k does: eval "$(gce-emulator --stop)"`)
	flag.Parse()
	// The emulator stands in for Google's servers, not for a process that
	// must be frugal with memory: on the machine it shares with the client
	// it checks, every collection is CPU taken from that client. A GOGC
	// the user sets still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(emulatorGCPercent)
	}
	stopProfile := devprof.Start()
	// The command that starts a background emulator warns, on the terminal
	// its user sees; the emulator it starts writes only to its log.
	if !*stop && os.Getenv(readyFDVar) == "" {
		fmt.Fprint(os.Stderr, rootWarning(os.Geteuid(), *sshd))
	}
	var err error
	switch {
	case *stop:
		err = stopEmulator()
	case *background:
		err = startBackground()
	default:
		err = run(options{*project, *nodes, *sshd, *listen, *envFile, *adcFile, *stateDir, *delay, *lifetime, *latency, *verbose,
			*tlsOn || *mtls, *mtls, *mtlsListen})
	}
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gce-emulator:", err)
		os.Exit(1)
	}
}

// rootWarning is what the emulator says on start when euid is root: its
// nodes' sessions are then root's on this machine, so a README example
// such as `gkessh run … -- sudo tee /etc/x` would write the host's /etc/x.
func rootWarning(euid int, sshd string) string {
	if euid != 0 {
		return ""
	}
	who := "every SSH session on its nodes runs as root on this machine"
	if sshd == "openssh" {
		who = "a login on its nodes as USER runs as this machine's USER, root included"
	}
	return "gce-emulator: WARNING: running as root: " + who +
		", so a command run on a node (`sudo tee /etc/x`, `rm -rf ~`) changes this machine;" +
		" run it as an unprivileged user, or on a throw-away machine or container\n"
}

// options are the flags of a serving emulator.
type options struct {
	project                  string
	nodes                    int
	sshd, listen             string
	envFile, adcFile         string
	stateDir                 string
	delay, lifetime, latency time.Duration
	verbose                  bool
	tls, mtls                bool
	mtlsListen               string
}

func run(o options) error {
	project, listen, envFile := o.project, o.listen, o.envFile
	ready, runDir := backgroundChild()
	if runDir != "" {
		defer os.RemoveAll(runDir)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := emulator.Config{Project: project, Nodes: o.nodes, SSHD: o.sshd, PropagationDelay: o.delay, Dir: o.stateDir, TLS: o.tls, MTLS: o.mtls}
	if o.stateDir != "" {
		if err := os.MkdirAll(o.stateDir, 0o700); err != nil {
			return err
		}
	}
	if o.verbose {
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
	if err := writeSecretFile(tokenFile, []byte(srv.Token()+"\n")); err != nil {
		return err
	}
	// curl -H @FILE reads the control API's header from the file, so the
	// secret never shows in a command line (ps shows those to every user).
	headerFile := filepath.Join(srv.Dir(), "control-header")
	if err := writeSecretFile(headerFile, []byte("Authorization: Bearer "+srv.ControlSecret()+"\n")); err != nil {
		return err
	}
	scheme, wsScheme := "http", "ws"
	var tlsVars []envVar
	servers := []*http.Server{{Handler: srv, ReadHeaderTimeout: 10 * time.Second}}
	listeners := []net.Listener{ln}
	if o.tls {
		scheme, wsScheme = "https", "wss"
		listeners[0] = tls.NewListener(ln, srv.TLSConfig())
		// gcloud trusts the CA through its property; Go programs read
		// SSL_CERT_FILE, which is not set here: it would replace the
		// system's CAs for every program in the shell.
		tlsVars = append(tlsVars, envVar{"CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", srv.CAFile()}, envVar{"GCE_EMULATOR_CA_FILE", srv.CAFile()})
	}
	if o.mtls {
		mln, err := net.Listen("tcp", o.mtlsListen)
		if err != nil {
			return err
		}
		listeners = append(listeners, tls.NewListener(mln, srv.MTLSConfig()))
		servers = append(servers, &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second})
		cert, key := srv.ClientCertFiles()
		tlsVars = append(tlsVars, envVar{"GCE_EMULATOR_MTLS_URL", "https://" + mln.Addr().String()},
			envVar{"GCE_EMULATOR_CLIENT_CERT", cert}, envVar{"GCE_EMULATOR_CLIENT_KEY", key})
	}
	base := scheme + "://" + ln.Addr().String()
	srv.SetTokenLifetime(o.lifetime)
	srv.SetTokenLatency(o.latency)
	if o.adcFile != "" {
		if err := writeADCFile(srv, o.adcFile, base); err != nil {
			return err
		}
	}
	// gcloud's own variables point gcloud at the emulator too, every API
	// it calls for ssh, OS Login, impersonation and troubleshooting, and
	// its token endpoint (a refresh of a gcloud login or an impersonating
	// subprocess would otherwise go to Google). A base of "/" makes gcloud
	// add the API's own path. gkessh reads the same properties.
	// The control secret is what keeps other local users off the control
	// API: it goes only to these lines and 0600 files.
	env := renderEnv(append([]envVar{
		{"GKESSH_COMPUTE_ENDPOINT", base + "/compute/v1/"},
		{"GKESSH_IAP_ENDPOINT", wsScheme + "://" + ln.Addr().String()},
		{"GKESSH_ACCESS_TOKEN_FILE", tokenFile},
		{"CLOUDSDK_CORE_PROJECT", project},
		{"CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE", base + "/compute/v1/"},
		{"CLOUDSDK_API_ENDPOINT_OVERRIDES_OSLOGIN", base + "/"},
		{"CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", base + "/"},
		{"CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM", base + "/"},
		{"CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER", base + "/"},
		{"CLOUDSDK_API_ENDPOINT_OVERRIDES_IAP", base + "/"},
		{"CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE", base + "/"},
		{"CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING", base + "/"},
		{"CLOUDSDK_API_ENDPOINT_OVERRIDES_NETWORKMANAGEMENT", base + "/"},
		{"CLOUDSDK_AUTH_TOKEN_HOST", base + "/token"},
		{"GCE_EMULATOR_CONTROL_SECRET", srv.ControlSecret()},
		{"GCE_EMULATOR_CONTROL_HEADER", headerFile},
		{"GCE_EMULATOR_PID", strconv.Itoa(os.Getpid())},
	}, append(tlsVars, logVar(runDir)...)...)) + stopHint
	if envFile != "" {
		if err := writeSecretFile(envFile, []byte(env)); err != nil {
			return err
		}
		defer os.Remove(envFile)
	}
	if ready != nil {
		// Only the command that started this one reads the lines: they
		// hold the control secret, and the log is a file.
		_, err := ready.WriteString(env)
		if cerr := ready.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("hand the env lines to --background: %w", err)
		}
	} else {
		fmt.Print(env)
	}
	errc := make(chan error, len(servers))
	for i, hs := range servers {
		go func() { errc <- hs.Serve(listeners[i]) }()
	}
	err = nil
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, hs := range servers {
		if serr := hs.Shutdown(shutdownCtx); err == nil && serr != nil && !errors.Is(serr, context.DeadlineExceeded) {
			err = serr
		}
	}
	return err
}

// writeADCFile writes a key file for a service account that owns the
// project, with the emulator's token endpoint as its token_uri, as a
// secret file (writeSecretFile).
func writeADCFile(srv *emulator.Server, path, base string) error {
	email := "emulator-adc@" + srv.ProjectName() + ".iam.gserviceaccount.com"
	key, err := srv.AddServiceAccount(emulator.Account{Email: email, Grant: emulator.Grant{Projects: []string{srv.ProjectName()}}}, base)
	if err != nil {
		return err
	}
	return writeSecretFile(path, key)
}
