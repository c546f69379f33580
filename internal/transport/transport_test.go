package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/gkessh/gkessh/internal/gcloud"
	"github.com/gkessh/gkessh/internal/testcert"
)

// tlsServer serves h over TLS with a certificate from ca; with clients
// set, it requires a client certificate that CA issued. It records the
// common name of each client certificate it is shown.
type tlsServer struct {
	*httptest.Server
	mu    sync.Mutex
	peers []string
}

func newTLSServer(t *testing.T, ca *testcert.CA, clients *testcert.CA, h http.Handler) *tlsServer {
	t.Helper()
	s := &tlsServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
		if len(r.TLS.PeerCertificates) > 0 {
			s.mu.Lock()
			s.peers = append(s.peers, r.TLS.PeerCertificates[0].Subject.CommonName)
			s.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t)}}
	if clients != nil {
		pool := x509.NewCertPool()
		pool.AddCert(clients.Cert)
		s.TLS.ClientAuth, s.TLS.ClientCAs = tls.RequireAndVerifyClientCert, pool
	}
	s.Server.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	s.EnableHTTP2 = true                                  // as Google's APIs do
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *tlsServer) clients() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.peers...)
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "ok" {
		return errors.New("reply " + string(b))
	}
	return nil
}

func network(mod func(n *gcloud.Network)) *gcloud.Network {
	n := &gcloud.Network{Universe: gcloud.Setting{Value: gcloud.DefaultUniverse}}
	if mod != nil {
		mod(n)
	}
	return n
}

func newT(t *testing.T, o Options) *Transport {
	t.Helper()
	if o.Env == nil {
		o.Env = envOf(nil)
	}
	tr, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// TestCustomCA: the CA file is trusted, and in place of the system's
// roots, for API calls and the relay alike.
func TestCustomCA(t *testing.T) {
	ca := testcert.NewCA(t, "corp CA")
	srv := newTLSServer(t, ca, nil, ok)
	file := ca.File(t)
	tr := newT(t, Options{Network: network(func(n *gcloud.Network) { n.CAFile = gcloud.Setting{Value: file, Source: "test"} })})
	if err := get(tr.HTTPClient(), srv.URL); err != nil {
		t.Errorf("with the CA file: %v", err)
	}
	resp, err := tr.HTTPClient().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if p := resp.Header.Get("X-Proto"); p != "HTTP/2.0" {
		t.Errorf("API calls speak %s to a server that speaks HTTP/2, as Google's do", p)
	}
	plain := newT(t, Options{})
	var ue x509.UnknownAuthorityError
	if err := get(plain.HTTPClient(), srv.URL); !errors.As(err, &ue) {
		t.Errorf("without the CA file: err = %v, want an unknown authority", err)
	}
	if err := get(tr.OAuthClient(), srv.URL); err != nil {
		t.Errorf("OAuth client with the CA file: %v", err)
	}
}

// wsEcho serves a websocket that echoes one message.
var wsEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	typ, msg, err := ws.ReadMessage()
	if err == nil {
		ws.WriteMessage(typ, msg)
	}
})

func wsPing(tr *Transport, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := tr.WSDialer()
	if err != nil {
		return err
	}
	ws, _, err := w.DialContext(ctx, "wss"+strings.TrimPrefix(url, "https"), nil)
	if err != nil {
		return err
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte("ping")); err != nil {
		return err
	}
	_, msg, err := ws.ReadMessage()
	if err == nil && string(msg) != "ping" {
		err = errors.New("echo " + string(msg))
	}
	return err
}

// TestRelayTLS: the relay's websocket goes through the proxy, trusts the
// CA file and shows the client certificate; only InsecureRelay skips
// verification, and only of the relay.
func TestRelayTLS(t *testing.T) {
	ca, clients := testcert.NewCA(t, "corp CA"), testcert.NewCA(t, "device CA")
	srv := newTLSServer(t, ca, clients, wsEcho)
	cfg := testcert.Workload(t, clients.Client(t, "laptop-42", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
	p := startTestProxy(t, "http", "ann", "s3cret")
	n := network(func(n *gcloud.Network) {
		n.CAFile = gcloud.Setting{Value: ca.File(t), Source: "test"}
		n.ClientCert, n.ClientCertSource = true, "test"
		n.CertConfigFile = gcloud.Setting{Value: cfg}
		n.Proxy = proxySetting(p.addr(), "ann", "s3cret")
	})
	tr := newT(t, Options{Network: n})
	if err := wsPing(tr, srv.URL); err != nil {
		t.Fatalf("websocket: %v", err)
	}
	if got := srv.clients(); len(got) != 1 || got[0] != "laptop-42" {
		t.Errorf("the relay saw client certificates %v, want [laptop-42]", got)
	}
	if got := p.targets(); len(got) != 1 || got[0] != strings.TrimPrefix(srv.URL, "https://") {
		t.Errorf("the proxy was asked for %v", got)
	}

	// Without the CA file only the insecure flag gets through.
	n2 := *n
	n2.CAFile = gcloud.Setting{}
	strict := newT(t, Options{Network: &n2})
	var ue x509.UnknownAuthorityError
	if err := wsPing(strict, srv.URL); !errors.As(err, &ue) {
		t.Errorf("without the CA file: err = %v, want an unknown authority", err)
	}
	insecure := newT(t, Options{Network: &n2, InsecureRelay: true})
	if err := wsPing(insecure, srv.URL); err != nil {
		t.Errorf("insecure relay: %v", err)
	}
	if err := get(insecure.HTTPClient(), srv.URL); !errors.As(err, &ue) {
		t.Errorf("the API client of an insecure relay: err = %v, want an unknown authority", err)
	}
}

// TestRelayResumesTLS: a dialer's second websocket resumes the first's
// TLS session, as a fleet's tunnels do, instead of verifying the relay's
// certificate chain again; the relay still sees the client certificate.
func TestRelayResumesTLS(t *testing.T) {
	ca, clients := testcert.NewCA(t, "corp CA"), testcert.NewCA(t, "device CA")
	srv := newTLSServer(t, ca, clients, wsEcho)
	cfg := testcert.Workload(t, clients.Client(t, "laptop-42", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
	tr := newT(t, Options{Network: network(func(n *gcloud.Network) {
		n.CAFile = gcloud.Setting{Value: ca.File(t), Source: "test"}
		n.ClientCert, n.ClientCertSource = true, "test"
		n.CertConfigFile = gcloud.Setting{Value: cfg}
	})})
	w, err := tr.WSDialer()
	if err != nil {
		t.Fatal(err)
	}
	for i, resumed := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ws, _, err := w.DialContext(ctx, "wss"+strings.TrimPrefix(srv.URL, "https"), nil)
		cancel()
		if err != nil {
			t.Fatalf("websocket %d: %v", i+1, err)
		}
		// The session ticket comes after the handshake: one exchange
		// lets the client read it.
		if err := ws.WriteMessage(websocket.BinaryMessage, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ws.ReadMessage(); err != nil {
			t.Fatal(err)
		}
		if got := ws.UnderlyingConn().(*tls.Conn).ConnectionState().DidResume; got != resumed {
			t.Errorf("websocket %d resumed a TLS session: %v, want %v", i+1, got, resumed)
		}
		ws.Close()
	}
	if got := srv.clients(); len(got) != 2 || got[0] != "laptop-42" || got[1] != "laptop-42" {
		t.Errorf("the relay saw client certificates %v, want laptop-42 twice", got)
	}
}

func proxySetting(addr, user, pass string) *gcloud.Proxy {
	host, port, _ := strings.Cut(addr, ":")
	p := 0
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	return &gcloud.Proxy{Type: "http", Address: host, Port: p, Username: user, Password: pass, RDNS: true, Source: "test"}
}

// TestHeaders: gcloud's request reason goes on every call and the relay's
// handshake; the quota project on API calls only, and only when it names a
// project.
func TestHeaders(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	cases := []struct {
		reason, quota       string
		apiQuota, apiReason string
	}{
		{"", "", "", ""},
		{"ticket 42", "billing-project", "billing-project", "ticket 42"},
		{"", "CURRENT_PROJECT", "", ""},
		{"", "LEGACY", "", ""},
	}
	for _, tc := range cases {
		tr := newT(t, Options{Network: network(func(n *gcloud.Network) {
			n.RequestReason = gcloud.Setting{Value: tc.reason, Source: "test"}
			n.QuotaProject = gcloud.Setting{Value: tc.quota, Source: "test"}
		})})
		seen = nil
		if err := get(tr.HTTPClient(), srv.URL); err != nil {
			t.Fatal(err)
		}
		if err := get(tr.OAuthClient(), srv.URL); err != nil {
			t.Fatal(err)
		}
		api, oauth := seen[0], seen[1]
		if api.Get("X-Goog-Request-Reason") != tc.apiReason || api.Get("X-Goog-User-Project") != tc.apiQuota {
			t.Errorf("%+v: API call headers %v", tc, api)
		}
		if oauth.Get("X-Goog-Request-Reason") != tc.apiReason || oauth.Get("X-Goog-User-Project") != "" {
			t.Errorf("%+v: token call headers %v", tc, oauth)
		}
		if got := tr.RelayHeader().Get("X-Goog-Request-Reason"); got != tc.apiReason {
			t.Errorf("%+v: relay's X-Goog-Request-Reason %q", tc, got)
		}
	}
}

// BenchmarkNew is what a warm `gkessh proxy` adds at its start for a user
// with no network settings: reading them from the loaded configuration
// and building the transport (no file, no network).
func BenchmarkNew(b *testing.B) {
	dir := b.TempDir()
	env := envOf(map[string]string{"CLOUDSDK_CONFIG": dir, "HOME": dir})
	cfg, err := gcloud.Load(env)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		n, err := cfg.Network()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := New(Options{Network: n, Env: env}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCAFileRead: the CA file is read at the first TLS connection, not
// before: plain connections (an emulator's ws:// relay) never read it, and
// a file without a certificate fails the TLS ones, naming the setting.
func TestCAFileRead(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	plainSrv := httptest.NewServer(ok)
	defer plainSrv.Close()
	n := network(func(n *gcloud.Network) { n.CAFile = gcloud.Setting{Value: bad, Source: "test"} })
	tr := newT(t, Options{Network: n, RelayEndpoint: "ws://127.0.0.1:9"})
	if err := get(tr.HTTPClient(), plainSrv.URL); err != nil {
		t.Errorf("plain HTTP: %v", err)
	}
	if _, err := tr.WSDialer(); err != nil {
		t.Errorf("a ws:// relay's dialer: %v", err)
	}
	tlsSrv := newTLSServer(t, testcert.NewCA(t, "ca"), nil, ok)
	if err := get(tr.HTTPClient(), tlsSrv.URL); err == nil || !strings.Contains(err.Error(), "core/custom_ca_certs_file "+bad+" (test) holds no PEM certificate") {
		t.Errorf("TLS with a CA file holding no certificate: %v", err)
	}
	if _, err := newT(t, Options{Network: n}).WSDialer(); err == nil {
		t.Error("a wss:// relay's dialer with a CA file holding no certificate: no error")
	}
	if _, _, err := tr.Roots(); err == nil {
		t.Error("Roots: no error for a CA file holding no certificate")
	}
}
