package testcert

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/rpc"
	"os"
	"testing"

	"github.com/googleapis/enterprise-certificate-proxy/client"
)

// ECPSignerVar, set in a test binary's environment, makes its TestMain
// serve as an enterprise certificate proxy signer (ServeECPSigner): ECP's
// client starts the signer a config names with the config's path.
const ECPSignerVar = "GKESSH_TEST_ECP_SIGNER"

// ECPConfig writes an enterprise certificate config of the ECP form (a
// PKCS#11 key, as on Linux) whose signer is the program signer, and
// beside ECP's fields the paths of c for ServeECPSigner; it returns its
// path. The signer must run with ECPSignerVar set.
func ECPConfig(tb testing.TB, c tls.Certificate, signer string) string {
	tb.Helper()
	cert, key := Files(tb, c)
	return JSON(tb, map[string]any{
		"cert_configs": map[string]any{"pkcs11": map[string]any{"module": "test", "slot": 0, "label": "test"}},
		"libs":         map[string]string{"ecp": signer},
		"test_signer":  map[string]string{"cert_path": cert, "key_path": key},
	})
}

// ServeECPSigner is an ECP signer for the config at configPath (written
// by ECPConfig): it serves the key over net/rpc on stdin and stdout until
// stdin closes, and returns the process's exit status.
func ServeECPSigner(configPath string) int {
	b, err := os.ReadFile(configPath)
	if err != nil {
		return 3
	}
	var cfg struct {
		Test struct {
			Cert string `json:"cert_path"`
			Key  string `json:"key_path"`
		} `json:"test_signer"`
	}
	if json.Unmarshal(b, &cfg) != nil {
		return 3
	}
	c, err := tls.LoadX509KeyPair(cfg.Test.Cert, cfg.Test.Key)
	if err != nil {
		return 3
	}
	srv := rpc.NewServer()
	if err := srv.Register(&EnterpriseCertSigner{cert: c}); err != nil {
		return 3
	}
	srv.ServeConn(stdio{})
	return 0
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

// stdio is the signer's end of the pipes.
type stdio struct{}

func (stdio) Read(p []byte) (int, error)  { return os.Stdin.Read(p) }
func (stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }
func (stdio) Close() error                { return nil }
