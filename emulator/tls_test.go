//go:build unix

package emulator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// tlsServer serves s with cfg (its TLSConfig or MTLSConfig) and returns
// the server and a pool holding the emulator's CA, read from its file as a
// client would.
func tlsServer(t *testing.T, s *Server, cfg *tls.Config) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	if cfg == nil {
		t.Fatal("no TLS configuration")
	}
	hs := httptest.NewUnstartedServer(s)
	hs.TLS = cfg
	hs.StartTLS()
	t.Cleanup(hs.Close)
	ca, err := os.ReadFile(s.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("%s holds no certificate", s.CAFile())
	}
	return hs, pool
}

// tlsClient is what a client of the emulator under TLS would do: trust
// pool, present certs, name serverName (SNI; "" for the address).
type tlsClient struct {
	pool       *x509.CertPool
	certs      []tls.Certificate
	serverName string
}

func (c tlsClient) config() *tls.Config {
	return &tls.Config{RootCAs: c.pool, Certificates: c.certs, ServerName: c.serverName}
}

// get calls the Compute API at base with the project's token.
func (c tlsClient) get(t *testing.T, s *Server, base string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/compute/v1/projects/"+s.ProjectName()+"/aggregated/instances", nil)
	req.Header.Set("Authorization", "Bearer "+s.Token())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: c.config()}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
	return resp.StatusCode, string(b)
}

// refresh asks the token endpoint to refresh a user's login.
func (c tlsClient) refresh(t *testing.T, base string, user []byte) (int, string) {
	t.Helper()
	var f map[string]string
	if err := json.Unmarshal(user, &f); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: c.config()}}
	resp, err := hc.PostForm(base+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {f["refresh_token"]},
		"client_id": {f["client_id"]}, "client_secret": {f["client_secret"]}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// tunnel opens a tunnel to the node's port 22 over wss:// and returns the
// relay's first frame, or the close code it refused with.
func (c tlsClient) tunnel(t *testing.T, s *Server, hs *httptest.Server) (sid string, code int) {
	t.Helper()
	n := s.Node(s.Nodes()[0])
	d := websocket.Dialer{Subprotocols: []string{"relay.tunnel.cloudproxy.app"}, TLSClientConfig: c.config()}
	u := "wss://" + hs.Listener.Addr().String() + "/v4/connect?" + connectQuery(s, n, 22).Encode()
	ws, _, err := d.Dial(u, http.Header{"Authorization": {"Bearer " + s.Token()}, "Origin": {"bot:iap-tunneler"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := ws.ReadMessage()
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return "", ce.Code
	}
	if err != nil {
		t.Fatal(err)
	}
	f, err := parseWire(msg)
	if err != nil || f.Tag != wireSID {
		t.Fatalf("first frame %+v, %v", f, err)
	}
	return f.SID, 0
}

// TestTLS: under Config.TLS the APIs and the relay answer over HTTPS and
// wss:// for a client that trusts the emulator's CA file, and the TLS
// handshake fails for one that does not. Nothing asks for a client
// certificate.
func TestTLS(t *testing.T) {
	s, _ := newTestServer(t, Config{Nodes: 1, TLS: true})
	if s.MTLSConfig() != nil {
		t.Error("an mTLS configuration without Config.MTLS")
	}
	hs, pool := tlsServer(t, s, s.TLSConfig())
	c := tlsClient{pool: pool}
	if code, body := c.get(t, s, hs.URL); code != 200 {
		t.Errorf("Compute API over HTTPS: %d %s", code, body)
	}
	if sid, code := c.tunnel(t, s, hs); sid == "" {
		t.Errorf("tunnel over wss:// refused with %d", code)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}
	_, err := hc.Get(hs.URL + "/compute/v1/projects/x")
	var ue x509.UnknownAuthorityError
	if !errors.As(err, &ue) {
		t.Errorf("a client without the emulator's CA: %v, want an unknown authority", err)
	}
	if got := s.Stats().ClientCerts; len(got) != 0 {
		t.Errorf("client certificates counted without any: %v", got)
	}
}

// selfSigned is a client certificate the device CA did not issue.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "intruder"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestMTLS: under certificate-based access (Config.MTLS) a client with a
// certificate from the emulator's device CA reaches the APIs, the token
// endpoint and the relay on the mTLS port, and on the main port under an
// mTLS host name (SNI); without one, with another CA's or with an expired
// one, each refuses as Google does: the relay with 4033 after the upgrade,
// a user's token refresh with access_denied "Account restricted" (what
// gcloud reads as a Context-Aware Access denial), the APIs with 403
// PERMISSION_DENIED. The control API is not Google's and stays open.
func TestMTLS(t *testing.T) {
	s, _ := newTestServer(t, Config{Nodes: 1, MTLS: true})
	user, err := s.AddUser(Account{Email: "ann@example.com", Grant: Grant{Projects: []string{s.ProjectName()}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	main, pool := tlsServer(t, s, s.TLSConfig())
	mtls, _ := tlsServer(t, s, s.MTLSConfig())
	certFile, keyFile := s.ClientCertFiles()
	device, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := s.IssueClientCert("old laptop", time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	expired, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("allowed", func(t *testing.T) {
		for name, tc := range map[string]struct {
			hs *httptest.Server
			c  tlsClient
		}{
			"mTLS port":                    {mtls, tlsClient{pool: pool, certs: []tls.Certificate{device}}},
			"main port, an mTLS host name": {main, tlsClient{pool: pool, certs: []tls.Certificate{device}, serverName: "mtls.tunnel.cloudproxy.app"}},
		} {
			if code, body := tc.c.get(t, s, tc.hs.URL); code != 200 {
				t.Errorf("%s: Compute API: %d %s", name, code, body)
			}
			if code, body := tc.c.refresh(t, tc.hs.URL, user); code != 200 {
				t.Errorf("%s: token refresh: %d %s", name, code, body)
			}
			if sid, code := tc.c.tunnel(t, s, tc.hs); sid == "" {
				t.Errorf("%s: tunnel refused with %d", name, code)
			}
		}
		if n := s.Stats().ClientCerts["gce-emulator test device"]; n != 6 {
			t.Errorf("%d requests counted with the test device's certificate, want 6", n)
		}
	})
	t.Run("refused", func(t *testing.T) {
		for name, tc := range map[string]struct {
			hs *httptest.Server
			c  tlsClient
		}{
			"no certificate":           {mtls, tlsClient{pool: pool}},
			"another CA's certificate": {mtls, tlsClient{pool: pool, certs: []tls.Certificate{selfSigned(t)}}},
			"an expired certificate":   {mtls, tlsClient{pool: pool, certs: []tls.Certificate{expired}}},
			// The main port does not ask for one: certificate-based
			// access is refused there too.
			"main port": {main, tlsClient{pool: pool, certs: []tls.Certificate{device}}},
		} {
			code, body := tc.c.get(t, s, tc.hs.URL)
			if code != 403 || !strings.Contains(body, "Request is prohibited by organization's policy") || !strings.Contains(body, "SECURITY_POLICY_VIOLATED") {
				t.Errorf("%s: Compute API: %d %s", name, code, body)
			}
			if code, body := tc.c.refresh(t, tc.hs.URL, user); code != 400 || !strings.Contains(body, `"error": "access_denied"`) || !strings.Contains(body, "Account restricted") {
				t.Errorf("%s: token refresh: %d %s", name, code, body)
			}
			if sid, code := tc.c.tunnel(t, s, tc.hs); code != 4033 {
				t.Errorf("%s: tunnel: sid %q, close %d, want 4033", name, sid, code)
			}
			if code := ctl(t, tc.hs, "GET", "/control/faults", nil, nil); code != 200 {
				t.Errorf("%s: control API: %d", name, code)
			}
		}
	})
}

// TestTLSCredentialsFiles: under Config.TLS the credentials files the
// control API writes name the https:// token endpoint, and a service
// account's JWT, whose audience x/oauth2 takes from that token_uri, gets a
// token there.
func TestTLSCredentialsFiles(t *testing.T) {
	s, _ := newTestServer(t, Config{Nodes: 1, TLS: true})
	hs, pool := tlsServer(t, s, s.TLSConfig())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsClient{pool: pool}.config()}}
	for _, typ := range []string{"service_account", "authorized_user"} {
		body := `{"type":"` + typ + `","email":"robot@` + s.ProjectName() + `.iam.gserviceaccount.com","projects":["` + s.ProjectName() + `"]}`
		req, _ := http.NewRequest("POST", hs.URL+"/control/accounts", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testControlSecret)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		file, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var f struct {
			TokenURI string `json:"token_uri"`
		}
		if err := json.Unmarshal(file, &f); err != nil || f.TokenURI != hs.URL+"/token" {
			t.Errorf("%s: token_uri %q (%v), want %s/token", typ, f.TokenURI, err, hs.URL)
		}
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
		creds, err := google.CredentialsFromJSONWithType(ctx, file, google.CredentialsType(typ), cloudPlatform)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := creds.TokenSource.Token(); err != nil {
			t.Errorf("%s: token over HTTPS: %v", typ, err)
		}
	}
}
