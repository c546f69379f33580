//go:build unix

package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// TLS as Google serves it (Config.TLS): HTTPS for the APIs and wss:// for
// the relay, under a certificate from a CA of the emulator's own, which it
// writes to ca.pem in its directory for clients to trust (gcloud's
// core/custom_ca_certs_file; Go's SSL_CERT_FILE).
//
// Certificate-based access (Config.MTLS): a second CA, the "device" CA,
// issues client certificates (client.pem and client-key.pem for the
// tests). The mTLS port (MTLSConfig), and the main port for server names
// with "mtls." in them (as mtls.tunnel.cloudproxy.app and
// compute.mtls.googleapis.com), ask for a client certificate; and Google's
// APIs and the relay refuse whoever does not present one the device CA
// issued, as IAP with certificate-based access refuses:
//   - the relay: close 4033 "not authorized" after the websocket upgrade,
//     as IAP answers a tunnel without its client certificate
//     (googleapis/enterprise-certificate-proxy#209: websockets to
//     mtls.tunnel.cloudproxy.app sent without it "failing authentication
//     with error 4033");
//   - the token endpoint, for a refresh token (a user's login): HTTP 400
//     {"error":"access_denied","error_description":"Account restricted"},
//     the answer gcloud knows as a Context-Aware Access denial
//     (googlecloudsdk/core/context_aware.py); a service account's JWT grant
//     is not refused;
//   - the APIs: HTTP 403 PERMISSION_DENIED "Request is prohibited by
//     organization's policy", VPC Service Controls' denial, through which
//     certificate-based access guards Google Cloud APIs (assumed: Google
//     documents the setup, not the body).
// The TLS handshake itself refuses nobody: Google's front ends evaluate the
// certificate after it, as the 4033 shows.

// tlsState is the emulator's certificates.
type tlsState struct {
	server            tls.Certificate
	devices           *x509.CertPool // the device CA, which client certificates must chain to
	devCA             *x509.Certificate
	devKey            *ecdsa.PrivateKey
	caFile            string
	certFile, keyFile string // a client certificate the device CA issued, for tests

	mu    sync.Mutex
	certs map[string]int64 // requests with a verified client certificate, by its subject's CN
}

// googleNames are the host names the server certificate covers besides
// loopback, so that a client sending Google's name (SNI, Host) is served.
var googleNames = []string{"localhost", "tunnel.cloudproxy.app", "mtls.tunnel.cloudproxy.app",
	"*.googleapis.com", "*.mtls.googleapis.com"}

// newTLSState makes the CAs and the server certificate, and writes ca.pem
// (and, with mtls, client.pem and client-key.pem) into dir.
func newTLSState(dir string, mtls bool) (*tlsState, error) {
	caCert, caKey, err := newCA("gce-emulator CA")
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := leafTemplate("gce-emulator", x509.ExtKeyUsageServerAuth, time.Now().Add(5*365*24*time.Hour))
	tmpl.DNSNames = googleNames
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	st := &tlsState{
		server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		caFile: filepath.Join(dir, "ca.pem"),
		certs:  map[string]int64{},
	}
	if err := os.WriteFile(st.caFile, pemBlock("CERTIFICATE", caCert.Raw), 0o644); err != nil {
		return nil, err
	}
	if !mtls {
		return st, nil
	}
	st.devCA, st.devKey, err = newCA("gce-emulator device CA")
	if err != nil {
		return nil, err
	}
	st.devices = x509.NewCertPool()
	st.devices.AddCert(st.devCA)
	certPEM, keyPEM, err := st.issue("gce-emulator test device", time.Now().Add(5*365*24*time.Hour))
	if err != nil {
		return nil, err
	}
	st.certFile, st.keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	if err := os.WriteFile(st.certFile, certPEM, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(st.keyFile, keyPEM, 0o600); err != nil {
		return nil, err
	}
	return st, nil
}

func newCA(name string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := leafTemplate(name, 0, time.Now().Add(10*365*24*time.Hour))
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = nil
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func leafTemplate(cn string, usage x509.ExtKeyUsage, notAfter time.Time) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"gce-emulator"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// issue makes a client certificate and key, PEM, from the device CA.
func (st *tlsState) issue(cn string, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, leafTemplate(cn, x509.ExtKeyUsageClientAuth, notAfter), st.devCA, &key.PublicKey, st.devKey)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", kder), nil
}

// config is the TLS configuration of a port; askCert makes it ask every
// client for a certificate, else only those naming an mTLS host.
func (st *tlsState) config(askCert bool) *tls.Config {
	base := &tls.Config{
		Certificates: []tls.Certificate{st.server},
		MinVersion:   tls.VersionTLS12,
		// Websockets need HTTP/1.1's upgrade.
		NextProtos: []string{"http/1.1"},
	}
	if st.devices == nil {
		return base
	}
	ask := base.Clone()
	// Asked, not required: the refusal comes after the handshake.
	ask.ClientAuth = tls.RequestClientCert
	if askCert {
		return ask
	}
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if mtlsName(hello.ServerName) {
			return ask, nil
		}
		return nil, nil
	}
	return base
}

// mtlsName reports whether host is one of Google's mTLS host names:
// mtls.tunnel.cloudproxy.app, SERVICE.mtls.googleapis.com.
func mtlsName(host string) bool {
	return strings.HasPrefix(host, "mtls.") || strings.Contains(host, ".mtls.")
}

// device returns the CN of the client certificate r came with, if the
// device CA issued it and it is valid now.
func (st *tlsState) device(r *http.Request) (string, bool) {
	if st == nil || st.devices == nil || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", false
	}
	leaf := r.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: st.devices, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return "", false
	}
	return leaf.Subject.CommonName, true
}

// TLSConfig is the configuration of the main port under Config.TLS (nil
// without): the emulator's server certificate, and under Config.MTLS a
// request for a client certificate from clients naming an mTLS host.
func (s *Server) TLSConfig() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.config(false)
}

// MTLSConfig is the configuration of the mTLS port under Config.MTLS (nil
// without): the main port's, asking every client for its certificate.
func (s *Server) MTLSConfig() *tls.Config {
	if s.tls == nil || s.tls.devices == nil {
		return nil
	}
	return s.tls.config(true)
}

// CAFile is the PEM file of the CA clients must trust under Config.TLS
// ("" without).
func (s *Server) CAFile() string {
	if s.tls == nil {
		return ""
	}
	return s.tls.caFile
}

// ClientCertFiles are a client certificate and its key (PEM) from the
// device CA under Config.MTLS ("" without).
func (s *Server) ClientCertFiles() (cert, key string) {
	if s.tls == nil {
		return "", ""
	}
	return s.tls.certFile, s.tls.keyFile
}

// IssueClientCert makes a client certificate for commonName from the
// device CA, valid until notAfter (a past time makes an expired one), and
// its key, both PEM. It needs Config.MTLS.
func (s *Server) IssueClientCert(commonName string, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	if s.tls == nil || s.tls.devCA == nil {
		return nil, nil, errors.New("emulator: client certificates need Config.MTLS")
	}
	return s.tls.issue(commonName, notAfter)
}

// checkDevice counts r's client certificate and, under certificate-based
// access, refuses r without one as Google does; it reports whether it
// answered r. The relay refuses in its own way, after the upgrade
// (iapAuthorized), and the control API is the emulator's, not Google's.
func (s *Server) checkDevice(w http.ResponseWriter, r *http.Request) bool {
	cn, ok := s.tls.device(r)
	if ok {
		s.tls.mu.Lock()
		s.tls.certs[cn]++
		s.tls.mu.Unlock()
	}
	if ok || s.tls == nil || s.tls.devices == nil {
		return false
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/control/"), strings.HasPrefix(r.URL.Path, "/v4/"):
		return false
	case r.URL.Path == "/token":
		if r.ParseForm() == nil && r.PostForm.Get("grant_type") != "refresh_token" {
			return false
		}
		s.cfg.Logf("tls: %s without a client certificate: access_denied", r.URL.Path)
		oauthError(w, http.StatusBadRequest, "access_denied", "Account restricted")
		return true
	}
	s.cfg.Logf("tls: %s without a client certificate: 403", r.URL.Path)
	uid := randomHex(16)
	msg := "Request is prohibited by organization's policy. vpcServiceControlsUniqueIdentifier: " + uid
	e := googleError{Code: http.StatusForbidden, Message: msg, Status: "PERMISSION_DENIED", Details: []any{
		map[string]any{"@type": "type.googleapis.com/google.rpc.PreconditionFailure",
			"violations": []map[string]string{{"type": "VPC_SERVICE_CONTROLS", "description": uid}}},
		newErrorInfo("SECURITY_POLICY_VIOLATED", map[string]string{"uid": uid}),
	}}
	if strings.HasPrefix(r.URL.Path, "/compute/") {
		e.Errors = []errorItem{{Message: msg, Domain: "global", Reason: "forbidden"}}
	}
	writeError(w, e)
	return true
}

// deviceAllowed reports whether the relay may open a tunnel for r: no
// certificate-based access, or a client certificate from the device CA.
func (s *Server) deviceAllowed(r *http.Request) bool {
	if s.tls == nil || s.tls.devices == nil {
		return true
	}
	_, ok := s.tls.device(r)
	return ok
}

func (s *Server) resetClientCertStats() {
	if s.tls != nil {
		s.tls.mu.Lock()
		clear(s.tls.certs)
		s.tls.mu.Unlock()
	}
}

// clientCertStats copies the counts of verified client certificates; nil
// for none.
func (s *Server) clientCertStats() map[string]int64 {
	if s.tls == nil {
		return nil
	}
	s.tls.mu.Lock()
	defer s.tls.mu.Unlock()
	if len(s.tls.certs) == 0 {
		return nil
	}
	return maps.Clone(s.tls.certs)
}
