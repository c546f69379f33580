package transport

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/rpc"
	"os"
	"testing"

	"github.com/googleapis/enterprise-certificate-proxy/client"
)

// TestMain lets the test binary stand in for the programs a client
// certificate comes from: with GKESSH_TEST_CERT_PROVIDER set it is an
// Endpoint Verification helper printing that PEM file; with
// GKESSH_TEST_ECP_SIGNER set it is an enterprise certificate proxy signer
// serving the key its config names, over net/rpc on stdin and stdout.
func TestMain(m *testing.M) {
	if f := os.Getenv("GKESSH_TEST_CERT_PROVIDER"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Stdout.Write(b)
		os.Exit(0)
	}
	if os.Getenv("GKESSH_TEST_ECP_SIGNER") != "" {
		serveSigner(os.Args[1])
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// EnterpriseCertSigner is the RPC service an ECP signer exports; the
// client calls it by this name.
type EnterpriseCertSigner struct{ cert tls.Certificate }

// CertificateChain returns the certificate chain, DER.
func (s *EnterpriseCertSigner) CertificateChain(_ struct{}, chain *[][]byte) error {
	*chain = s.cert.Certificate
	return nil
}

// Public returns the public key, PKIX DER.
func (s *EnterpriseCertSigner) Public(_ struct{}, pub *[]byte) error {
	leaf, err := x509.ParseCertificate(s.cert.Certificate[0])
	if err != nil {
		return err
	}
	*pub, err = x509.MarshalPKIXPublicKey(leaf.PublicKey)
	return err
}

// Sign signs a digest with the key.
func (s *EnterpriseCertSigner) Sign(args client.SignArgs, sig *[]byte) (err error) {
	*sig, err = s.cert.PrivateKey.(crypto.Signer).Sign(rand.Reader, args.Digest, args.Opts)
	return err
}

// serveSigner reads the test's certificate and key paths from the config
// (test_signer, beside the ECP fields) and serves until stdin closes.
func serveSigner(configPath string) {
	b, err := os.ReadFile(configPath)
	if err != nil {
		os.Exit(3)
	}
	var cfg struct {
		Test struct {
			Cert string `json:"cert_path"`
			Key  string `json:"key_path"`
		} `json:"test_signer"`
	}
	if json.Unmarshal(b, &cfg) != nil {
		os.Exit(3)
	}
	c, err := tls.LoadX509KeyPair(cfg.Test.Cert, cfg.Test.Key)
	if err != nil {
		os.Exit(3)
	}
	srv := rpc.NewServer()
	if err := srv.Register(&EnterpriseCertSigner{cert: c}); err != nil {
		os.Exit(3)
	}
	srv.ServeConn(stdio{})
}

// stdio is the signer's end of the pipes.
type stdio struct{}

func (stdio) Read(p []byte) (int, error)  { return os.Stdin.Read(p) }
func (stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }
func (stdio) Close() error                { return nil }

var _ io.ReadWriteCloser = stdio{}
