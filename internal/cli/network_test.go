//go:build unix

package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
)

// deviceCert writes a self-signed client certificate for cn, valid until
// notAfter, and an enterprise certificate config of the workload form
// naming it; it returns the config's path.
func deviceCert(t *testing.T, cn string, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notBefore := notAfter.Add(-48 * time.Hour)
	if now := time.Now().Add(-time.Hour); now.Before(notBefore) {
		notBefore = now
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile, cfg := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "certificate_config.json")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	b, _ := json.Marshal(map[string]any{"cert_configs": map[string]any{"workload": map[string]string{"cert_path": certFile, "key_path": keyFile}}})
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) (host string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	return "127.0.0.1", addr.Port
}

// TestDoctorNetwork: doctor shows the proxy (never its password), the
// client certificate with its subject and expiry, the endpoints and
// headers that are not Google's, each with where it was set; a proxy that
// is down fails the API check naming it, with what to do.
func TestDoctorNetwork(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	host, port := closedPort(t)
	proxy := "http://" + net.JoinHostPort(host, strconv.Itoa(port))
	expires := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)
	env := append(e.env(),
		"CLOUDSDK_PROXY_TYPE=http", "CLOUDSDK_PROXY_ADDRESS="+host, "CLOUDSDK_PROXY_PORT="+strconv.Itoa(port),
		"CLOUDSDK_PROXY_USERNAME=ann", "CLOUDSDK_PROXY_PASSWORD=s3cret",
		"CLOUDSDK_CORE_REQUEST_REASON=ticket 42",
		"CLOUDSDK_CONTEXT_AWARE_USE_CLIENT_CERTIFICATE=true",
		"CLOUDSDK_CONTEXT_AWARE_CERTIFICATE_CONFIG_FILE_PATH="+deviceCert(t, "laptop-42", expires))
	code, out, stderr := execGkessh(t, env, []string{"doctor"}, nil)
	for _, want := range []string{
		"ok    proxy " + proxy + " as ann, from proxy/type, proxy/address, proxy/port (CLOUDSDK_PROXY_TYPE)\n",
		"ok    client certificate CN=laptop-42, expires " + expires.Format(time.RFC3339) + " (in 90 days), from workload certificate",
		"ok    compute API at " + e.url + "/compute/v1/, from GKESSH_COMPUTE_ENDPOINT\n",
		"ok    oslogin API at " + e.url + "/, from api_endpoint_overrides/oslogin (CLOUDSDK_API_ENDPOINT_OVERRIDES_OSLOGIN)\n",
		"ok    X-Goog-Request-Reason: ticket 42, from core/request_reason (CLOUDSDK_CORE_REQUEST_REASON)\n",
		"FAIL  compute API: ", "proxy " + proxy + " (proxy/type, proxy/address, proxy/port (CLOUDSDK_PROXY_TYPE)), connecting to 127.0.0.1:",
		"check that the proxy is up",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor's output lacks %q:\n%s", want, out)
		}
	}
	if code != exitError1 || strings.Contains(out+stderr, "s3cret") {
		t.Errorf("exit %d (want %d), and the password must not show:\n%s%s", code, exitError1, out, stderr)
	}

	// A login through the proxy that is down is gkessh's own failure.
	code, _, stderr = execGkessh(t, env, []string{e.srv.Nodes()[0], "--", "true"}, nil)
	if code != 255 || !strings.Contains(stderr, proxy) || !strings.Contains(stderr, "check that the proxy is up") || strings.Contains(stderr, "s3cret") {
		t.Errorf("login through a dead proxy: exit %d, stderr %q", code, stderr)
	}
}

// TestDoctorExpiredCertificate: a client certificate out of date fails
// doctor with its dates and the way out.
func TestDoctorExpiredCertificate(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{})
	expired := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	env := append(e.env(), "CLOUDSDK_CONTEXT_AWARE_USE_CLIENT_CERTIFICATE=1",
		"CLOUDSDK_CONTEXT_AWARE_CERTIFICATE_CONFIG_FILE_PATH="+deviceCert(t, "old-laptop", expired))
	code, out, _ := execGkessh(t, env, []string{"doctor"}, nil)
	want := "FAIL  client certificate: the client certificate CN=old-laptop (from workload certificate"
	if code != exitError1 || !strings.Contains(out, want) || !strings.Contains(out, "to 2024-03-01T00:00:00Z, not now: renew it") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}
