//go:build unix

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/testcert"
)

// The corporate-network tests (issue 23) run gkessh and OpenSSH through
// real proxies, tinyproxy (HTTP CONNECT) and microsocks (SOCKS5), to the
// emulator behind a TLS front with a private CA that can require a client
// certificate, as certificate-based access does.

// freePort is a loopback port nothing listens on, for a server that takes
// its port from a flag or file.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// waitListening waits until addr accepts connections.
func waitListening(t testing.TB, addr string, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s: %v", what, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startDaemon runs cmd until the test ends.
func startDaemon(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// tinyproxy runs tinyproxy on a loopback port with its own config: Basic
// credentials user:pass, every CONNECT port allowed (no ConnectPort line),
// each request logged. It returns the address and the log's path.
func tinyproxy(t testing.TB, user, pass string) (addr, log string) {
	t.Helper()
	need(t, "tinyproxy")
	dir := t.TempDir()
	port := freePort(t)
	log = filepath.Join(dir, "tinyproxy.log")
	conf := "Port " + port + "\nListen 127.0.0.1\nTimeout 600\nMaxClients 256\nAllow 127.0.0.1\nLogLevel Connect\n" +
		"LogFile \"" + log + "\"\nPidFile \"" + filepath.Join(dir, "tinyproxy.pid") + "\"\nBasicAuth " + user + " " + pass + "\n"
	if err := os.WriteFile(filepath.Join(dir, "tinyproxy.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, exec.Command("tinyproxy", "-d", "-c", filepath.Join(dir, "tinyproxy.conf")))
	addr = "127.0.0.1:" + port
	waitListening(t, addr, "tinyproxy")
	return addr, log
}

// microsocks runs microsocks on a loopback port with credentials
// user:pass; it makes its outgoing connections from bind, so that the far
// end can tell them (microsocks logs nothing).
func microsocks(t testing.TB, user, pass, bind string) string {
	t.Helper()
	need(t, "microsocks")
	port := freePort(t)
	startDaemon(t, exec.Command("microsocks", "-i", "127.0.0.1", "-p", port, "-u", user, "-P", pass, "-b", bind))
	addr := "127.0.0.1:" + port
	waitListening(t, addr, "microsocks")
	return addr
}

// certFront terminates TLS with a certificate from its CA in front of the
// emulator at backend, requiring a client certificate from clients when
// that is not nil, and records who came: the peer's address and the
// client certificate's common name.
type certFront struct {
	addr string
	ca   *testcert.CA
	mu   sync.Mutex
	seen []frontPeer
}

type frontPeer struct {
	from string // the connecting IP
	cn   string // the client certificate's common name, "" for none
}

func startCertFront(t testing.TB, backend string, clients *x509.CertPool) *certFront {
	t.Helper()
	f := &certFront{ca: testcert.NewCA(t, "corp CA")}
	cfg := &tls.Config{Certificates: []tls.Certificate{f.ca.Server(t)}}
	if clients != nil {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, clients
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.serve(c.(*tls.Conn), backend)
			}()
		}
	}()
	return f
}

func (f *certFront) serve(c *tls.Conn, backend string) {
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := c.HandshakeContext(ctx)
	cancel()
	if err != nil {
		return
	}
	peer := frontPeer{from: c.RemoteAddr().(*net.TCPAddr).IP.String()}
	if certs := c.ConnectionState().PeerCertificates; len(certs) > 0 {
		peer.cn = certs[0].Subject.CommonName
	}
	f.mu.Lock()
	f.seen = append(f.seen, peer)
	f.mu.Unlock()
	up, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(up, c)
		up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(c, up)
	c.CloseWrite()
	<-done
}

func (f *certFront) peers() []frontPeer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]frontPeer(nil), f.seen...)
}

// env points every endpoint of gkessh at the front, trusting its CA
// through gcloud's core/custom_ca_certs_file.
func (f *certFront) env(t testing.TB) []string {
	base := "https://" + f.addr
	env := []string{
		"GKESSH_COMPUTE_ENDPOINT=" + base + "/compute/v1/", "GKESSH_IAP_ENDPOINT=wss://" + f.addr,
		"CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE=" + f.ca.File(t),
	}
	for _, api := range []string{"OSLOGIN", "IAMCREDENTIALS", "CLOUDRESOURCEMANAGER", "IAM", "IAP", "COMPUTE"} {
		env = append(env, "CLOUDSDK_API_ENDPOINT_OVERRIDES_"+api+"="+base+"/")
	}
	return append(env, "CLOUDSDK_AUTH_TOKEN_HOST="+base+"/token")
}

// runWith runs prog in w with extra variables, returning its stdout, stderr
// and exit status.
func (w *world) runWith(extra []string, prog string, args ...string) (string, string, int) {
	w.t.Helper()
	return w.runEnvStderr(append(append([]string(nil), w.env...), extra...), prog, args...)
}

// runEnvStderr runs prog in w with the environment env alone, returning
// its stdout, stderr and exit status.
func (w *world) runEnvStderr(env []string, prog string, args ...string) (string, string, int) {
	w.t.Helper()
	cmd := w.command(prog, args...)
	cmd.Env = env
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		w.t.Fatalf("%s: %v", prog, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// TestThroughCorporateProxies: gkessh's own login and OpenSSH through the
// block config-ssh writes (gkessh proxy) reach a node through tinyproxy
// and through microsocks, each with credentials, to endpoints served over
// TLS with a private CA; through microsocks the front requires a client
// certificate, and gkessh shows the one gcloud's certificate-based access
// settings name. tinyproxy's own log shows the CONNECTs (the APIs and the
// relay), the front shows every connection coming from microsocks, and the
// proxy password shows nowhere, not even with -v.
func TestThroughCorporateProxies(t *testing.T) {
	need(t, "ssh")
	w := startEmulator(t, "--nodes", "1", "--sshd", "openssh", "--propagation-delay", "100ms")
	backend := strings.TrimPrefix(w.base, "http://")
	node := w.nodes()[0].Name
	devices := testcert.NewCA(t, "device CA")
	device := testcert.Workload(t, devices.Client(t, "laptop-42", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))

	for _, tc := range []struct {
		name  string
		proxy func(t *testing.T) (env []string, check func(t *testing.T, f *certFront))
		mtls  bool
	}{
		{"tinyproxy", func(t *testing.T) ([]string, func(*testing.T, *certFront)) {
			addr, log := tinyproxy(t, "ann", "s3cret")
			host, port, _ := net.SplitHostPort(addr)
			return []string{"CLOUDSDK_PROXY_TYPE=http", "CLOUDSDK_PROXY_ADDRESS=" + host, "CLOUDSDK_PROXY_PORT=" + port,
					"CLOUDSDK_PROXY_USERNAME=ann", "CLOUDSDK_PROXY_PASSWORD=s3cret"},
				func(t *testing.T, f *certFront) {
					b, err := os.ReadFile(log)
					if err != nil {
						t.Fatal(err)
					}
					if n := strings.Count(string(b), "CONNECT "+f.addr+" HTTP/1.1"); n < 4 {
						t.Errorf("tinyproxy's log has %d CONNECTs to %s, want the APIs' and the relay's:\n%s", n, f.addr, b)
					}
					for _, p := range f.peers() {
						if p.from != "127.0.0.1" {
							t.Errorf("the front saw a connection from %s", p.from)
						}
					}
				}
		}, false},
		{"microsocks", func(t *testing.T) ([]string, func(*testing.T, *certFront)) {
			addr := microsocks(t, "ann", "s3cret", "127.0.0.2")
			return []string{"HTTPS_PROXY=socks5h://ann:s3cret@" + addr,
					"CLOUDSDK_CONTEXT_AWARE_USE_CLIENT_CERTIFICATE=true", "CLOUDSDK_CONTEXT_AWARE_CERTIFICATE_CONFIG_FILE_PATH=" + device},
				func(t *testing.T, f *certFront) {
					for _, p := range f.peers() {
						if p.from != "127.0.0.2" || p.cn != "laptop-42" {
							t.Errorf("the front saw a connection from %s with certificate %q, want 127.0.0.2 (microsocks) and laptop-42", p.from, p.cn)
						}
					}
				}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var clients *x509.CertPool
			if tc.mtls {
				clients = devices.Pool()
			}
			f := startCertFront(t, backend, clients)
			penv, check := tc.proxy(t)
			env := append(f.env(t), penv...)
			env = append(env, "XDG_CACHE_HOME="+t.TempDir()) // a cold cache: the APIs are called
			out, stderr, code := w.runWith(env, "gkessh", "-v", node, "--", "echo", "hello")
			if code != 0 || strings.TrimSpace(out) != "hello" {
				t.Fatalf("gkessh through %s: exit %d, %q\n%s", tc.name, code, out, stderr)
			}
			if strings.Contains(stderr, "s3cret") {
				t.Errorf("-v shows the proxy password:\n%s", stderr)
			}
			w.runWith(env, "gkessh", "config-ssh", "--user", loginUser(t))
			cfg := filepath.Join(w.home, ".ssh", "config")
			if out, stderr, code := w.runWith(env, "ssh", "-F", cfg, node, "echo", "via-ssh"); code != 0 || strings.TrimSpace(out) != "via-ssh" {
				t.Fatalf("ssh through %s: exit %d, %q\n%s", tc.name, code, out, stderr)
			}
			if len(f.peers()) < 4 {
				t.Errorf("the front saw %d connections", len(f.peers()))
			}
			check(t, f)

			if tc.mtls {
				// Without certificate-based access on, the front refuses.
				plain := append(f.env(t), penv[0])
				_, stderr, code := w.runWith(plain, "gkessh", node, "--", "true")
				if code != 255 || !strings.Contains(stderr, "asks for a client certificate") {
					t.Errorf("without a client certificate: exit %d, stderr %q", code, stderr)
				}
			}
		})
	}
}

// TestProxyRefusals: a proxy that is down, or that wants other
// credentials, ends gkessh with 255, naming the proxy and not its
// password.
func TestProxyRefusals(t *testing.T) {
	w := startEmulator(t, "--nodes", "1")
	node := w.nodes()[0].Name
	addr, _ := tinyproxy(t, "ann", "right")
	host, port, _ := net.SplitHostPort(addr)
	down := freePort(t)
	for _, tc := range []struct {
		name, port, want, hint string
	}{
		{"wrong password", port, "HTTP 401 Unauthorized", "the proxy wants credentials"}, // tinyproxy's answer
		{"down", down, "connection refused", "check that the proxy is up"},
	} {
		env := []string{"CLOUDSDK_PROXY_TYPE=http", "CLOUDSDK_PROXY_ADDRESS=" + host, "CLOUDSDK_PROXY_PORT=" + tc.port,
			"CLOUDSDK_PROXY_USERNAME=ann", "CLOUDSDK_PROXY_PASSWORD=s3cret", "XDG_CACHE_HOME=" + t.TempDir()}
		_, stderr, code := w.runWith(env, "gkessh", node, "--", "true")
		if code != 255 || !strings.Contains(stderr, "proxy http://"+net.JoinHostPort(host, tc.port)) ||
			!strings.Contains(stderr, tc.want) || !strings.Contains(stderr, tc.hint) || strings.Contains(stderr, "s3cret") {
			t.Errorf("%s: exit %d, stderr %q", tc.name, code, stderr)
		}
	}
}

// TestPrivateCA: the emulator under --tls, with its own CA, is trusted
// through core/custom_ca_certs_file or, where Go reads it (Linux and the
// other Unixes but macOS), SSL_CERT_FILE; the property replaces the
// system's roots, SSL_CERT_FILE included, as in gcloud. Without either,
// the login ends in exit 255 naming the unknown authority and the
// property.
func TestPrivateCA(t *testing.T) {
	if runtime.GOOS == "darwin" {
		t.Skip("on macOS Go asks the system to verify: SSL_CERT_FILE plays no part")
	}
	w := startEmulator(t, "--nodes", "1", "--tls")
	node := w.nodes()[0].Name
	ca := w.getenv("GCE_EMULATOR_CA_FILE")
	other := testcert.NewCA(t, "another CA").File(t)
	var base []string
	for _, v := range w.env {
		if !strings.HasPrefix(v, "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE=") && !strings.HasPrefix(v, "SSL_CERT_FILE=") &&
			!strings.HasPrefix(v, "SSL_CERT_DIR=") {
			base = append(base, v)
		}
	}
	for _, tc := range []struct {
		name string
		vars []string
		ok   bool
	}{
		{"core/custom_ca_certs_file", []string{"CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE=" + ca}, true},
		{"SSL_CERT_FILE", []string{"SSL_CERT_FILE=" + ca}, true},
		{"neither", nil, false},
		{"the property over SSL_CERT_FILE", []string{"SSL_CERT_FILE=" + ca, "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE=" + other}, false},
	} {
		env := append(append(slices.Clone(base), "XDG_CACHE_HOME="+t.TempDir()), tc.vars...)
		out, stderr, code := w.runEnvStderr(env, "gkessh", node, "--", "echo", "in")
		switch {
		case tc.ok && (code != 0 || strings.TrimSpace(out) != "in"):
			t.Errorf("%s: exit %d, %q\n%s", tc.name, code, out, stderr)
		case !tc.ok && (code != 255 || !strings.Contains(stderr, "certificate signed by unknown authority") || !strings.Contains(stderr, "core/custom_ca_certs_file")):
			t.Errorf("%s: exit %d, stderr %q; want 255, the unknown authority and the property", tc.name, code, stderr)
		}
	}
	env := append(slices.Clone(base), "SSL_CERT_FILE="+ca)
	if out, _, _ := w.runEnvStderr(env, "gkessh", "doctor"); !strings.Contains(out, "ok    servers' certificates checked against the system's roots, from "+ca+", from SSL_CERT_FILE\n") {
		t.Errorf("doctor does not name SSL_CERT_FILE:\n%s", out)
	}
}
