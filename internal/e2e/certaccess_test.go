//go:build unix

package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/testcert"
	"github.com/gkessh/gkessh/internal/testnet"
)

// hostsProxy is an HTTP CONNECT proxy that sends every tunnel, whatever
// host it names, to one backend, and records the names in order: with it
// gkessh can be left on Google's own host names (no endpoint setting at
// all) and still reach the emulator, and the test sees which hosts it
// chose.
type hostsProxy struct {
	addr string
	mu   sync.Mutex
	seen []string
}

func startHostsProxy(t testing.TB, backend string) *hostsProxy {
	t.Helper()
	p := &hostsProxy{}
	p.addr = testnet.Serve(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil || req.Method != http.MethodConnect {
			return
		}
		p.mu.Lock()
		p.seen = append(p.seen, req.Host)
		p.mu.Unlock()
		up, err := net.Dial("tcp", backend)
		if err != nil {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
			return
		}
		defer up.Close()
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		splice(c, br, up)
	})
	return p
}

// targets returns the hosts tunnelled to so far and forgets them.
func (p *hostsProxy) targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := p.seen
	p.seen = nil
	return seen
}

// googleEnv is w's environment with every endpoint setting gone, so that
// gkessh picks Google's hosts itself, reaching the emulator through p; the
// emulator's CA stays trusted through core/custom_ca_certs_file.
func googleEnv(w *world, p *hostsProxy, extra ...string) []string {
	var env []string
	for _, v := range w.env {
		k, _, _ := strings.Cut(v, "=")
		switch {
		case k == "GKESSH_COMPUTE_ENDPOINT", k == "GKESSH_IAP_ENDPOINT", k == "CLOUDSDK_AUTH_TOKEN_HOST",
			strings.HasPrefix(k, "CLOUDSDK_API_ENDPOINT_OVERRIDES_"),
			strings.EqualFold(k, "HTTPS_PROXY"), strings.EqualFold(k, "NO_PROXY"), strings.EqualFold(k, "HTTP_PROXY"):
			continue
		}
		env = append(env, v)
	}
	return append(append(env, "HTTPS_PROXY=http://"+p.addr, "CLOUDSDK_CONFIG="+filepath.Join(w.home, "gcloud")), extra...)
}

// TestCertificateAccess: under certificate-based access (gce-emulator
// --mtls), gkessh with gcloud's context_aware settings shows a client
// certificate to the APIs and the relay, taken from the enterprise
// certificate config (through an ECP signer, or the workload form) or
// from Endpoint Verification's cert_provider_command, on the mTLS hosts gcloud uses
// (compute.mtls.googleapis.com, mtls.tunnel.cloudproxy.app); the emulator
// counts the certificate. Without one, each of Google's three refusals
// (the API's organization-policy 403, the token endpoint's "Account
// restricted", the relay's 4033) ends in exit 255 with the way to turn
// certificate-based access on.
func TestCertificateAccess(t *testing.T) {
	need(t, "ssh")
	adc := filepath.Join(t.TempDir(), "adc.json")
	w := startEmulator(t, "--nodes", "1", "--mtls", "--propagation-delay", "100ms", "--adc-file", adc)
	n := w.nodes()[0]
	backend := strings.TrimPrefix(w.base, "https://")
	p := startHostsProxy(t, backend)
	const device = "gce-emulator test device" // the CN of the certificate the emulator issues
	const hint = "gcloud config set context_aware/use_client_certificate true"

	t.Run("refused", func(t *testing.T) {
		var user json.RawMessage
		w.control("POST", "/control/accounts", map[string]any{"type": "authorized_user", "email": ann, "projects": []string{e2eProject}}, &user)
		userFile := filepath.Join(t.TempDir(), "user.json")
		if err := os.WriteFile(userFile, user, 0o600); err != nil {
			t.Fatal(err)
		}
		var tokenless []string
		for _, v := range googleEnv(w, p) {
			if !strings.HasPrefix(v, "GKESSH_ACCESS_TOKEN_FILE=") {
				tokenless = append(tokenless, v)
			}
		}
		for _, tc := range []struct {
			name string
			env  []string
			args []string
			want string
		}{
			{"API", googleEnv(w, p), []string{n.Name, "--", "true"}, "refused by the organization's policy (403"},
			{"token endpoint", append(tokenless, "GOOGLE_APPLICATION_CREDENTIALS="+userFile), []string{n.Name, "--", "true"}, "Account restricted"},
		} {
			_, stderr, code := w.runEnvStderr(append(tc.env, "XDG_CACHE_HOME="+t.TempDir()), "gkessh", tc.args...)
			if code != 255 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, hint) {
				t.Errorf("%s without a client certificate: exit %d, stderr %q; want 255, %q and %q", tc.name, code, stderr, tc.want, hint)
			}
		}
		if got := p.targets(); !slices.Contains(got, "compute.googleapis.com:443") {
			t.Errorf("without a client certificate gkessh went to %q, want Google's plain hosts", got)
		}
	})

	cert, key := w.getenv("GCE_EMULATOR_CLIENT_CERT"), w.getenv("GCE_EMULATOR_CLIENT_KEY")
	provider := filepath.Join(w.home, "cert-provider")
	writeFile(t, provider, fmt.Sprintf("#!/bin/sh\ncat %q %q\n", cert, key))
	if err := os.Chmod(provider, 0o700); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	workload := "CLOUDSDK_CONTEXT_AWARE_CERTIFICATE_CONFIG_FILE_PATH=" + testcert.JSON(t,
		map[string]any{"cert_configs": map[string]any{"workload": map[string]string{"cert_path": cert, "key_path": key}}})
	// sshVia logs in with gkessh, then with ssh through the block
	// config-ssh writes (gkessh proxy), in env.
	sshVia := func(t *testing.T, env []string) {
		t.Helper()
		out, stderr, code := w.runEnvStderr(env, "gkessh", n.Name, "--", "echo", "hello")
		if code != 0 || strings.TrimSpace(out) != "hello" {
			t.Fatalf("gkessh with a client certificate: exit %d, %q\n%s", code, out, stderr)
		}
		w.runEnvStderr(env, "gkessh", "config-ssh", "--user", loginUser(t))
		cfg := filepath.Join(w.home, ".ssh", "config")
		if out, stderr, code := w.runEnvStderr(env, "ssh", "-F", cfg, n.Name, "echo", "via-ssh"); code != 0 || strings.TrimSpace(out) != "via-ssh" {
			t.Fatalf("ssh through gkessh proxy with a client certificate: exit %d, %q\n%s", code, out, stderr)
		}
	}
	for _, tc := range []struct {
		name string
		vars []string
	}{
		// Google's enterprise-certificate-proxy client, with this test
		// binary as the signer the config names (testcert.ServeECPSigner).
		{"ecp", []string{"CLOUDSDK_CONTEXT_AWARE_CERTIFICATE_CONFIG_FILE_PATH=" + testcert.ECPConfig(t, pair, self), testcert.ECPSignerVar + "=1"}},
		{"workload", []string{workload}},
		{"cert_provider_command", []string{"CLOUDSDK_CONTEXT_AWARE_CERTIFICATE_CONFIG_FILE_PATH=" + filepath.Join(t.TempDir(), "none.json"),
			"CLOUDSDK_CONTEXT_AWARE_AUTO_DISCOVERY_FILE_PATH=" + testcert.JSON(t, map[string][]string{"cert_provider_command": {provider}})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := googleEnv(w, p, append(tc.vars, "CLOUDSDK_CONTEXT_AWARE_USE_CLIENT_CERTIFICATE=true", "XDG_CACHE_HOME="+t.TempDir())...)
			before := w.stats().ClientCerts[device]
			sshVia(t, env)
			got := p.targets()
			for _, h := range got {
				if !strings.Contains(h, ".mtls.googleapis.com:") && h != "mtls.tunnel.cloudproxy.app:443" {
					t.Errorf("with a client certificate gkessh went to %s, not an mTLS host (all: %q)", h, got)
				}
			}
			if !slices.Contains(got, "compute.mtls.googleapis.com:443") || !slices.Contains(got, "mtls.tunnel.cloudproxy.app:443") {
				t.Errorf("gkessh went to %q, want compute.mtls.googleapis.com and mtls.tunnel.cloudproxy.app", got)
			}
			// The login's API calls and tunnel, and the ssh's tunnel.
			if after := w.stats().ClientCerts[device]; after-before < 4 {
				t.Errorf("the emulator counted %d requests with the certificate %q, want the APIs' and both tunnels'", after-before, device)
			}
		})
	}

	// The relay's refusal: a warm proxy makes no API call, so the tunnel
	// is the first to meet certificate-based access, here with a
	// certificate the device CA did not issue.
	t.Run("relay refused", func(t *testing.T) {
		warm := t.TempDir() // the cache: the node known, and known to take the key
		sshVia(t, googleEnv(w, p, "CLOUDSDK_CONTEXT_AWARE_USE_CLIENT_CERTIFICATE=true", workload, "XDG_CACHE_HOME="+warm))
		p.targets()
		other := testcert.NewCA(t, "not the device CA").Client(t, "stranger", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		env := googleEnv(w, p, "CLOUDSDK_CONTEXT_AWARE_USE_CLIENT_CERTIFICATE=true",
			"CLOUDSDK_CONTEXT_AWARE_CERTIFICATE_CONFIG_FILE_PATH="+testcert.Workload(t, other), "XDG_CACHE_HOME="+warm)
		_, stderr, code := w.runEnvStderr(env, "gkessh", "proxy", "--user", loginUser(t), n.Name, "22")
		if code != 255 || !strings.Contains(stderr, "4033") || !strings.Contains(stderr, hint) {
			t.Errorf("relay with a certificate from another CA: exit %d, stderr %q; want 255, 4033 and %q", code, stderr, hint)
		}
		// (It asks twice: a 4033 may be a stale token's, so the tunnel is
		// retried once with a fresh one.)
		if got := p.targets(); len(got) == 0 || slices.ContainsFunc(got, func(h string) bool { return h != "mtls.tunnel.cloudproxy.app:443" }) {
			t.Errorf("the warm proxy went to %q, want the relay alone", got)
		}
	})
}
