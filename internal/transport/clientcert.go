package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/googleapis/enterprise-certificate-proxy/client"

	"github.com/gkessh/gkessh/internal/gcloud"
)

// ClientCertError is certificate-based access that cannot go ahead: no
// certificate where the settings ask for one, a certificate source that
// failed, or a certificate outside its validity.
type ClientCertError struct {
	// Setting names context_aware/use_client_certificate and its origin.
	Setting string
	// Source is where the certificate comes from, or where it was looked
	// for.
	Source string
	// Subject and the validity are set for a certificate out of date.
	Subject             string
	NotBefore, NotAfter time.Time
	Err                 error
}

func (e *ClientCertError) Error() string {
	switch {
	case !e.NotAfter.IsZero():
		return fmt.Sprintf("the client certificate %s (from %s) is valid from %s to %s, not now",
			e.Subject, e.Source, e.NotBefore.UTC().Format(time.RFC3339), e.NotAfter.UTC().Format(time.RFC3339))
	case e.Err == nil:
		return fmt.Sprintf("certificate-based access is on (%s) but there is no client certificate: %s", e.Setting, e.Source)
	}
	return fmt.Sprintf("client certificate from %s: %v", e.Source, e.Err)
}

func (e *ClientCertError) Unwrap() error { return e.Err }

// Expired reports whether the certificate was out of date, rather than
// missing or not loaded.
func (e *ClientCertError) Expired() bool { return !e.NotAfter.IsZero() }

// certSource is where the client certificate comes from, as gcloud's
// context_aware.Config chooses: the enterprise certificate config when
// its file exists (the workload form's files, or the ECP signer it
// names), else the Endpoint Verification helper that
// ~/.secureConnect/context_aware_metadata.json names.
type certSource struct {
	setting string // use_client_certificate and its origin
	desc    string // for messages and doctor
	load    func(ctx context.Context) (*tls.Certificate, error)

	mu     sync.Mutex
	cert   *tls.Certificate
	leaf   *x509.Certificate
	closer func() error // stops an ECP signer
	now    func() time.Time
}

// findCertSource picks the source; it reads the config files but runs
// nothing.
func findCertSource(n *gcloud.Network) (*certSource, error) {
	s := &certSource{setting: "context_aware/use_client_certificate, from " + n.ClientCertSource, now: time.Now}
	cfgPath := n.CertConfigFile.Value
	b, err := os.ReadFile(cfgPath)
	switch {
	case err == nil:
		return s, s.enterprise(cfgPath, b)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, &ClientCertError{Setting: s.setting, Source: cfgPath, Err: err}
	}
	meta := n.AutoDiscoveryFile.Value
	b, err = os.ReadFile(meta)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &ClientCertError{Setting: s.setting, Source: fmt.Sprintf("neither the enterprise certificate config %s nor the Endpoint Verification file %s exists", cfgPath, meta)}
	}
	if err != nil {
		return nil, &ClientCertError{Setting: s.setting, Source: meta, Err: err}
	}
	var m struct {
		Cmd []string `json:"cert_provider_command"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, &ClientCertError{Setting: s.setting, Source: meta, Err: fmt.Errorf("not JSON: %w", err)}
	}
	if len(m.Cmd) == 0 {
		return nil, &ClientCertError{Setting: s.setting, Source: meta, Err: errors.New("no cert_provider_command")}
	}
	s.desc = fmt.Sprintf("cert_provider_command %s of %s", m.Cmd[0], meta)
	s.load = func(ctx context.Context) (*tls.Certificate, error) { return runProvider(ctx, m.Cmd) }
	return s, nil
}

// enterprise reads the enterprise certificate config at path: the
// workload form names a certificate and key file; the ECP form names the
// signer binary (libs.ecp) that holds the key in the OS store.
func (s *certSource) enterprise(path string, b []byte) error {
	var cfg struct {
		CertConfigs struct {
			Workload *struct {
				CertPath string `json:"cert_path"`
				KeyPath  string `json:"key_path"`
			} `json:"workload"`
		} `json:"cert_configs"`
		Libs struct {
			ECP string `json:"ecp"`
		} `json:"libs"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return &ClientCertError{Setting: s.setting, Source: path, Err: fmt.Errorf("the enterprise certificate config is not valid JSON: %w", err)}
	}
	if w := cfg.CertConfigs.Workload; w != nil {
		if w.CertPath == "" || w.KeyPath == "" {
			return &ClientCertError{Setting: s.setting, Source: path, Err: errors.New(`the "workload" certificate config needs both cert_path and key_path`)}
		}
		s.desc = fmt.Sprintf("workload certificate %s (enterprise certificate config %s)", w.CertPath, path)
		s.load = func(context.Context) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(w.CertPath, w.KeyPath)
			return &c, err
		}
		return nil
	}
	if cfg.Libs.ECP == "" {
		return &ClientCertError{Setting: s.setting, Source: path, Err: errors.New(`the enterprise certificate config has neither a "workload" certificate nor an ECP signer (libs.ecp)`)}
	}
	if _, err := os.Stat(ecpPath(cfg.Libs.ECP)); err != nil {
		return &ClientCertError{Setting: s.setting, Source: path, Err: fmt.Errorf("the enterprise certificate proxy (ECP) signer named by libs.ecp: %w", err)}
	}
	s.desc = fmt.Sprintf("enterprise certificate proxy signer %s (enterprise certificate config %s)", cfg.Libs.ECP, path)
	s.load = func(context.Context) (*tls.Certificate, error) {
		key, err := client.Cred(path)
		if err != nil {
			return nil, err
		}
		s.closer = func() error { return closeKey(key) }
		return &tls.Certificate{Certificate: key.CertificateChain(), PrivateKey: key}, nil
	}
	return nil
}

// ecpPath is the signer's path as ECP's client reads libs.ecp: "~" and
// "$HOME" stand for the home directory.
func ecpPath(p string) string {
	home, _ := os.UserHomeDir()
	return strings.ReplaceAll(strings.ReplaceAll(p, "~", home), "$HOME", home)
}

// closeKey stops the signer. The client's Close dereferences the error of
// closing its pipes, which the signer's exit has already closed; a nil
// there would panic, so recover.
func closeKey(k *client.Key) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = nil
		}
	}()
	return k.Close()
}

// providerTimeout bounds the Endpoint Verification helper.
const providerTimeout = time.Minute

// runProvider runs cert_provider_command, as google-auth's
// _run_cert_provider_command does (no shell, no variable expansion): its
// standard output holds the certificate and the private key in PEM.
func runProvider(ctx context.Context, argv []string) (*tls.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, providerTimeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			line, _, _ := strings.Cut(msg, "\n")
			err = fmt.Errorf("%w: %s", err, line)
		}
		return nil, err
	}
	if bytes.Contains(out, []byte("ENCRYPTED")) {
		return nil, errors.New("the helper gave an encrypted private key; gkessh asks for a plain one")
	}
	c, err := tls.X509KeyPair(out, out)
	if err != nil {
		return nil, fmt.Errorf("the helper's output: %w", err)
	}
	return &c, nil
}

// get returns the certificate, loading it on first use and again once it
// has expired (the helper or the files may have a new one); a certificate
// out of date is an error saying so.
func (s *certSource) get(ctx context.Context) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.cert != nil && now.Before(s.leaf.NotAfter) {
		return s.cert, nil
	}
	if s.closer != nil {
		s.closer()
		s.closer = nil
	}
	c, err := s.load(ctx)
	if err != nil {
		return nil, &ClientCertError{Setting: s.setting, Source: s.desc, Err: err}
	}
	if len(c.Certificate) == 0 {
		return nil, &ClientCertError{Setting: s.setting, Source: s.desc, Err: errors.New("no certificate")}
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil, &ClientCertError{Setting: s.setting, Source: s.desc, Err: err}
	}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, &ClientCertError{Setting: s.setting, Source: s.desc, Subject: leaf.Subject.String(), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter}
	}
	s.cert, s.leaf = c, leaf
	return c, nil
}

// close stops an ECP signer, if one was started.
func (s *certSource) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closer == nil {
		return nil
	}
	err := s.closer()
	s.closer, s.cert = nil, nil
	return err
}

// CertificateRequired reports whether err is a server refusing a client
// for showing no certificate: TLS 1.3's certificate_required alert (RFC
// 8446), which crypto/tls reports as a remote error without exporting its
// type.
func CertificateRequired(err error) bool {
	if errors.As(err, new(*certRefusedError)) {
		return true
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return false
	}
	return op.Err.Error() == "tls: certificate required"
}

// certRefusedError is a connection lost before its first response from a
// server that asked for a client certificate and got none. Under TLS 1.3
// the server's certificate_required alert comes after the handshake, and
// when HTTP/2's reader takes it first the request sees only that the
// connection could not be established.
type certRefusedError struct{ err error }

func (e *certRefusedError) Error() string {
	return "the server asked for a client certificate and closed the connection without one: " + e.err.Error()
}

func (e *certRefusedError) Unwrap() error { return e.err }

// refusalRT reports a request lost as above as a *certRefusedError.
type refusalRT struct {
	rt    http.RoundTripper
	asked *atomic.Bool
}

func (r refusalRT) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.rt.RoundTrip(req)
	if err != nil && r.asked.Load() && !CertificateRequired(err) && lostConn(err) {
		err = &certRefusedError{err}
	}
	return resp, err
}

// lostConn reports a connection that ended before a response: HTTP/2's
// "could not be established" (unexported), EOF, a reset or a broken pipe.
func lostConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || connReset(err) ||
		strings.Contains(err.Error(), "client conn could not be established")
}
