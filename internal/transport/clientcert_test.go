package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/gcloud"
	"github.com/gkessh/gkessh/internal/testcert"
)

// certNetwork is certificate-based access on, with the enterprise
// certificate config at cfg and the Endpoint Verification file at meta
// ("" for paths that do not exist).
func certNetwork(t *testing.T, ca *testcert.CA, cfg, meta string) *gcloud.Network {
	missing := filepath.Join(t.TempDir(), "missing.json")
	if cfg == "" {
		cfg = missing
	}
	if meta == "" {
		meta = missing
	}
	return network(func(n *gcloud.Network) {
		n.CAFile = gcloud.Setting{Value: ca.File(t), Source: "test"}
		n.ClientCert, n.ClientCertSource = true, "CLOUDSDK_CONTEXT_AWARE_USE_CLIENT_CERTIFICATE"
		n.CertConfigFile = gcloud.Setting{Value: cfg}
		n.AutoDiscoveryFile = gcloud.Setting{Value: meta}
	})
}

// TestClientCertSources reaches a server that requires a client
// certificate with one from each source gcloud knows: the workload form
// of the enterprise certificate config, an ECP signer it names (the test
// binary stands in for one, behind ECP's own client), and the Endpoint
// Verification helper that context_aware_metadata.json names.
func TestClientCertSources(t *testing.T) {
	ca, clients := testcert.NewCA(t, "corp CA"), testcert.NewCA(t, "device CA")
	srv := newTLSServer(t, ca, clients, ok)
	valid := func(t *testing.T, cn string) tls.Certificate {
		return clients.Client(t, cn, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	}
	ecp := func(t *testing.T) (string, string) {
		t.Setenv(testcert.ECPSignerVar, "1")
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		return testcert.ECPConfig(t, valid(t, "ecp-device"), exe), ""
	}
	provider := func(t *testing.T) (string, string) {
		cert, key := testcert.Files(t, valid(t, "ev-device"))
		both := filepath.Join(t.TempDir(), "both.pem")
		c, _ := os.ReadFile(cert)
		k, _ := os.ReadFile(key)
		if err := os.WriteFile(both, append(append(c, "junk between\n"...), k...), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("GKESSH_TEST_CERT_PROVIDER", both)
		exe, _ := os.Executable()
		return "", testcert.JSON(t, map[string]any{"cert_provider_command": []string{exe, "--with_passphrase_not_asked"}})
	}
	cases := []struct {
		name  string
		files func(t *testing.T) (cfg, meta string)
		cn    string
		desc  string
	}{
		{"workload", func(t *testing.T) (string, string) { return testcert.Workload(t, valid(t, "workload-device")), "" }, "workload-device", "workload certificate"},
		{"workload wins over Endpoint Verification", func(t *testing.T) (string, string) {
			_, meta := provider(t)
			return testcert.Workload(t, valid(t, "workload-device")), meta
		}, "workload-device", "workload certificate"},
		{"ecp", ecp, "ecp-device", "enterprise certificate proxy signer"},
		{"endpoint verification", provider, "ev-device", "cert_provider_command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, meta := tc.files(t)
			tr := newT(t, Options{Network: certNetwork(t, ca, cfg, meta)})
			if !strings.Contains(tr.cert.desc, tc.desc) {
				t.Errorf("source %q, want %q", tr.cert.desc, tc.desc)
			}
			before := len(srv.clients())
			if err := get(tr.HTTPClient(), srv.URL); err != nil {
				t.Fatal(err)
			}
			if got := srv.clients(); len(got) != before+1 || got[before] != tc.cn {
				t.Errorf("the server saw %v, want %s last", got, tc.cn)
			}
			if err := tr.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
}

// TestClientCertErrors: no certificate where one is required names the
// setting and where it looked; a certificate out of date says so with
// its dates; a server requiring one refuses a client without.
func TestClientCertErrors(t *testing.T) {
	ca, clients := testcert.NewCA(t, "corp CA"), testcert.NewCA(t, "device CA")
	srv := newTLSServer(t, ca, clients, ok)

	_, err := New(Options{Env: envOf(nil), Network: certNetwork(t, ca, "", "")})
	var ce *ClientCertError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "context_aware/use_client_certificate, from CLOUDSDK_CONTEXT_AWARE_USE_CLIENT_CERTIFICATE") ||
		!strings.Contains(err.Error(), "missing.json") {
		t.Errorf("no certificate: err = %v", err)
	}

	expired := clients.Client(t, "old-laptop", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC))
	tr := newT(t, Options{Network: certNetwork(t, ca, testcert.Workload(t, expired), "")})
	err = get(tr.HTTPClient(), srv.URL)
	if !errors.As(err, &ce) || !ce.Expired() || !strings.Contains(err.Error(), "2021-01-01T00:00:00Z") || !strings.Contains(err.Error(), "CN=old-laptop") {
		t.Errorf("expired: err = %v", err)
	}

	for name, cfg := range map[string]any{
		"not JSON":           "{",
		"workload, no key":   map[string]any{"cert_configs": map[string]any{"workload": map[string]string{"cert_path": "/c"}}},
		"neither form":       map[string]any{"cert_configs": map[string]any{}},
		"ECP signer missing": map[string]any{"libs": map[string]string{"ecp": "/nonexistent/ecp"}},
	} {
		path := testcert.JSON(t, cfg)
		if s, ok := cfg.(string); ok {
			os.WriteFile(path, []byte(s), 0o600)
		}
		if _, err := New(Options{Env: envOf(nil), Network: certNetwork(t, ca, path, "")}); !errors.As(err, &ce) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want a *ClientCertError naming %s", name, err, path)
		}
	}

	plain := newT(t, Options{Network: network(func(n *gcloud.Network) { n.CAFile = gcloud.Setting{Value: ca.File(t), Source: "test"} })})
	if err := get(plain.HTTPClient(), srv.URL); !CertificateRequired(err) {
		t.Errorf("a server requiring a client certificate, none shown: err = %v, want CertificateRequired", err)
	}
	if err := wsPing(plain, srv.URL); !CertificateRequired(err) {
		t.Errorf("the same through the relay's dialer: err = %v, want CertificateRequired", err)
	}
}

// TestRefusalRT: a connection lost before its first response, from a
// server that asked for a certificate and got none, is the server
// refusing the client; anything else keeps its own error.
func TestRefusalRT(t *testing.T) {
	notEstablished := errors.New("http2: client conn could not be established")
	type row struct {
		name  string
		asked bool
		err   error
		want  bool
	}
	rows := []row{
		{"h2 reader took the alert", true, notEstablished, true},
		{"closed at once", true, io.EOF, true},
		{"not asked", false, notEstablished, false},
		{"asked, timed out", true, context.DeadlineExceeded, false},
	}
	for _, errno := range lostErrnos {
		rows = append(rows, row{errno.Error(), true, &net.OpError{Op: "read", Err: os.NewSyscallError("read", errno)}, true})
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			var asked atomic.Bool
			asked.Store(tc.asked)
			rt := refusalRT{rtFunc(func(*http.Request) (*http.Response, error) { return nil, tc.err }), &asked}
			_, err := rt.RoundTrip(httptest.NewRequest("GET", "https://example.com/", nil))
			if got := CertificateRequired(err); got != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("CertificateRequired(%v) = %v, want %v, wrapping %v", err, got, tc.want, tc.err)
			}
		})
	}
}

// TestConnReset: what this OS returns from reading a connection the peer
// reset is a lost connection. On Windows that is Winsock's code, not
// syscall.ECONNRESET (compiled there, not run).
func TestConnReset(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	reset := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			// Once the client's byte shows its dial is over: a reset
			// during the dial would fail the dial instead.
			_, err = c.Read(make([]byte, 1))
			c.(*net.TCPConn).SetLinger(0) // close sends RST, not FIN
			c.Close()
		}
		reset <- err
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	if err := <-reset; err != nil {
		t.Fatal(err)
	}
	if _, err = c.Read(make([]byte, 1)); !lostConn(err) {
		t.Errorf("read from a reset connection: %v (%#v), not a lost connection", err, errors.Unwrap(errors.Unwrap(err)))
	}
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestProviderFails: a helper that exits non-zero is reported with its
// status and first line of error output.
func TestProviderFails(t *testing.T) {
	ca, clients := testcert.NewCA(t, "corp CA"), testcert.NewCA(t, "device CA")
	srv := newTLSServer(t, ca, clients, ok)
	t.Setenv("GKESSH_TEST_CERT_PROVIDER", filepath.Join(t.TempDir(), "missing.pem"))
	exe, _ := os.Executable()
	meta := testcert.JSON(t, map[string]any{"cert_provider_command": []string{exe}})
	tr := newT(t, Options{Network: certNetwork(t, ca, "", meta)})
	err := get(tr.HTTPClient(), srv.URL)
	var ce *ClientCertError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("err = %v", err)
	}
}
