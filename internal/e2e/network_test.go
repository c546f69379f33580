//go:build unix

package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/testcert"
	"github.com/gkessh/gkessh/internal/testnet"
)

// The corporate-network tests run gkessh and OpenSSH through
// real proxies, tinyproxy (HTTP CONNECT) and microsocks (SOCKS5), to the
// emulator serving TLS with its own CA (--tls), and requiring a client
// certificate as certificate-based access does (--mtls).

// startListening runs the daemon that cmdFor makes to listen on a
// loopback port (given in a flag or its config file) until the test ends,
// and returns its address once the daemon listens there. The port is found
// free by listening and closing, so another program may bind it first: the
// daemon then exits (address in use), or (where /proc tells) the listener
// found is not the daemon's, and another port is tried.
func startListening(t testing.TB, what string, cmdFor func(port string) *exec.Cmd) string {
	t.Helper()
	const tries = 5
	for try := 1; ; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, port, _ := net.SplitHostPort(addr)
		cmd := cmdFor(port)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
		})
		if listening(t, addr, cmd.Process.Pid, exited, what) {
			return addr
		}
		if try == tries {
			t.Fatalf("%s listened on none of %d ports found free", what, tries)
		}
		cmd.Process.Kill()
	}
}

// listening waits until process pid listens on addr (true), or exits
// (false).
func listening(t testing.TB, addr string, pid int, exited <-chan struct{}, what string) bool {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			mine, known := holdsListener(pid, addr)
			return mine || !known
		} else if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s after 30 s: %v", what, addr, err)
		}
	}
}

// holdsListener reports whether process pid holds a socket listening on
// addr's port, from Linux's /proc; known is false where there is none.
func holdsListener(pid int, addr string) (holds, known bool) {
	table, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false, false
	}
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	suffix := fmt.Sprintf(":%04X", p)
	sockets := map[string]bool{}
	for _, line := range strings.Split(string(table), "\n") {
		// sl local_address rem_address st ... inode; st 0A is LISTEN.
		if f := strings.Fields(line); len(f) > 9 && strings.HasSuffix(f[1], suffix) && f[3] == "0A" {
			sockets["socket:["+f[9]+"]"] = true
		}
	}
	fdDir := "/proc/" + strconv.Itoa(pid) + "/fd"
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return false, false
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && sockets[target] {
			return true, true
		}
	}
	return false, true
}

// tinyproxy runs tinyproxy on a loopback port with its own config: Basic
// credentials user:pass, every CONNECT port allowed (no ConnectPort line),
// each request logged. It returns the address and the log's path.
func tinyproxy(t testing.TB, user, pass string) (addr, log string) {
	t.Helper()
	need(t, "tinyproxy")
	dir := t.TempDir()
	log = filepath.Join(dir, "tinyproxy.log")
	addr = startListening(t, "tinyproxy", func(port string) *exec.Cmd {
		conf := "Port " + port + "\nListen 127.0.0.1\nTimeout 600\nMaxClients 256\nAllow 127.0.0.1\nLogLevel Connect\n" +
			"LogFile \"" + log + "\"\nPidFile \"" + filepath.Join(dir, "tinyproxy.pid") + "\"\nBasicAuth " + user + " " + pass + "\n"
		if err := os.WriteFile(filepath.Join(dir, "tinyproxy.conf"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return exec.Command("tinyproxy", "-d", "-c", filepath.Join(dir, "tinyproxy.conf"))
	})
	return addr, log
}

// microsocks runs microsocks on a loopback port with credentials
// user:pass; it makes its outgoing connections from bind, so that the far
// end can tell them (microsocks logs nothing).
func microsocks(t testing.TB, user, pass, bind string) string {
	t.Helper()
	need(t, "microsocks")
	return startListening(t, "microsocks", func(port string) *exec.Cmd {
		return exec.Command("microsocks", "-i", "127.0.0.1", "-p", port, "-u", user, "-P", pass, "-b", bind)
	})
}

// tap passes TCP connections on to the emulator at backend (TLS stays
// end to end between gkessh and the emulator) and records the address
// each came from, so a test can tell which proxy made it.
type tap struct {
	addr string
	mu   sync.Mutex
	from []string
}

func startTap(t testing.TB, backend string) *tap {
	t.Helper()
	tp := &tap{}
	tp.addr = testnet.Serve(t, func(c net.Conn) {
		defer c.Close()
		tp.mu.Lock()
		tp.from = append(tp.from, c.RemoteAddr().(*net.TCPAddr).IP.String())
		tp.mu.Unlock()
		up, err := net.Dial("tcp", backend)
		if err != nil {
			return
		}
		defer up.Close()
		splice(c, c, up)
	})
	return tp
}

// splice copies between a client c (read through from, which may hold
// bytes already buffered) and up until up is done, then closes both and
// waits for the other direction.
func splice(c net.Conn, from io.Reader, up net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(up, from)
		up.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(c, up)
	c.Close()
	up.Close()
	<-done
}

func (tp *tap) peers() []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]string(nil), tp.from...)
}

// env points every endpoint of gkessh at the tap; the emulator's CA is
// trusted through gcloud's core/custom_ca_certs_file, from its lines.
func (tp *tap) env() []string {
	base := "https://" + tp.addr
	env := []string{"GKESSH_COMPUTE_ENDPOINT=" + base + "/compute/v1/", "GKESSH_IAP_ENDPOINT=wss://" + tp.addr}
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
// and through microsocks, each with credentials, to the emulator serving
// TLS with its own CA; through microsocks the emulator requires a client
// certificate (--mtls), and gkessh shows the one gcloud's
// certificate-based access settings name, which the emulator counts.
// tinyproxy's own log shows the CONNECTs (the APIs and the relay), a tap
// before the emulator sees every connection come from microsocks, and
// the proxy password shows nowhere, not even with -v.
func TestThroughCorporateProxies(t *testing.T) {
	need(t, "ssh")
	const device = "gce-emulator test device" // the CN of the certificate --mtls issues
	for _, tc := range []struct {
		name  string
		mtls  bool
		proxy func(t *testing.T, w *world) (env []string, check func(t *testing.T, tp *tap))
	}{
		{"tinyproxy", false, func(t *testing.T, w *world) ([]string, func(*testing.T, *tap)) {
			addr, log := tinyproxy(t, "ann", "s3cret")
			host, port, _ := net.SplitHostPort(addr)
			return []string{"CLOUDSDK_PROXY_TYPE=http", "CLOUDSDK_PROXY_ADDRESS=" + host, "CLOUDSDK_PROXY_PORT=" + port,
					"CLOUDSDK_PROXY_USERNAME=ann", "CLOUDSDK_PROXY_PASSWORD=s3cret"},
				func(t *testing.T, tp *tap) {
					b, err := os.ReadFile(log)
					if err != nil {
						t.Fatal(err)
					}
					if n := strings.Count(string(b), "CONNECT "+tp.addr+" HTTP/1.1"); n < 4 {
						t.Errorf("tinyproxy's log has %d CONNECTs to %s, want the APIs' and the relay's:\n%s", n, tp.addr, b)
					}
					for _, from := range tp.peers() {
						if from != "127.0.0.1" {
							t.Errorf("the tap saw a connection from %s", from)
						}
					}
				}
		}},
		{"microsocks", true, func(t *testing.T, w *world) ([]string, func(*testing.T, *tap)) {
			addr := microsocks(t, "ann", "s3cret", "127.0.0.2")
			cert := testcert.JSON(t, map[string]any{"cert_configs": map[string]any{"workload": map[string]string{
				"cert_path": w.getenv("GCE_EMULATOR_CLIENT_CERT"), "key_path": w.getenv("GCE_EMULATOR_CLIENT_KEY")}}})
			before := w.stats().ClientCerts[device]
			return []string{"HTTPS_PROXY=socks5h://ann:s3cret@" + addr,
					"CLOUDSDK_CONTEXT_AWARE_USE_CLIENT_CERTIFICATE=true", "CLOUDSDK_CONTEXT_AWARE_CERTIFICATE_CONFIG_FILE_PATH=" + cert},
				func(t *testing.T, tp *tap) {
					for _, from := range tp.peers() {
						if from != "127.0.0.2" {
							t.Errorf("the tap saw a connection from %s, want 127.0.0.2 (microsocks)", from)
						}
					}
					if n := w.stats().ClientCerts[device] - before; n < 4 {
						t.Errorf("the emulator counted %d requests with the certificate, want the APIs' and the tunnels'", n)
					}
				}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--nodes", "1", "--sshd", "openssh", "--propagation-delay", "100ms", "--tls"}
			backend := func(w *world) string { return strings.TrimPrefix(w.base, "https://") }
			if tc.mtls {
				args[len(args)-1] = "--mtls"
				backend = func(w *world) string { return strings.TrimPrefix(w.getenv("GCE_EMULATOR_MTLS_URL"), "https://") }
			}
			w := startEmulator(t, args...)
			node := w.nodes()[0].Name
			tp := startTap(t, backend(w))
			penv, check := tc.proxy(t, w)
			env := append(tp.env(), penv...)
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
			if b, err := os.ReadFile(cfg); err != nil || strings.Contains(string(b), "s3cret") {
				t.Errorf("the ssh config (%v) holds the proxy password:\n%s", err, b)
			}
			if out, stderr, code := w.runWith(env, "ssh", "-F", cfg, node, "echo", "via-ssh"); code != 0 || strings.TrimSpace(out) != "via-ssh" {
				t.Fatalf("ssh through %s: exit %d, %q\n%s", tc.name, code, out, stderr)
			}
			if len(tp.peers()) < 4 {
				t.Errorf("the tap saw %d connections", len(tp.peers()))
			}
			check(t, tp)

			if tc.mtls {
				// Without certificate-based access on, the emulator refuses
				// as Google does.
				plain := append(tp.env(), penv[0], "XDG_CACHE_HOME="+t.TempDir())
				_, stderr, code := w.runWith(plain, "gkessh", node, "--", "true")
				if code != 255 || !strings.Contains(stderr, "organization's policy") || !strings.Contains(stderr, "context_aware/use_client_certificate true") {
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
	socks := microsocks(t, "ann", "right", "127.0.0.1")
	_, down, _ := net.SplitHostPort(testnet.Refused(t))
	props := func(port string) []string {
		return []string{"CLOUDSDK_PROXY_TYPE=http", "CLOUDSDK_PROXY_ADDRESS=" + host, "CLOUDSDK_PROXY_PORT=" + port,
			"CLOUDSDK_PROXY_USERNAME=ann", "CLOUDSDK_PROXY_PASSWORD=s3cret"}
	}
	for _, tc := range []struct {
		name  string
		env   []string
		proxy string
		want  string
		hint  string
	}{
		{"wrong password", props(port), "proxy http://" + addr, "HTTP 401 Unauthorized", "the proxy wants credentials"}, // tinyproxy's answer
		{"down", props(down), "proxy http://" + net.JoinHostPort(host, down), "connection refused", "check that the proxy is up"},
		{"SOCKS5 wrong password", []string{"HTTPS_PROXY=socks5h://ann:s3cret@" + socks}, "proxy socks5h://" + socks + " (HTTPS_PROXY)",
			"SOCKS5 user name and password refused", "socks5h://USER:PASS@HOST:PORT"}, // microsocks' answer
	} {
		env := append(tc.env, "XDG_CACHE_HOME="+t.TempDir())
		_, stderr, code := w.runWith(env, "gkessh", node, "--", "true")
		if code != 255 || !strings.Contains(stderr, tc.proxy) ||
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
