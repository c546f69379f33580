package transport

import (
	"fmt"
	"os"
	"testing"

	"github.com/gkessh/gkessh/internal/testcert"
)

// TestMain lets the test binary stand in for the programs a client
// certificate comes from: with GKESSH_TEST_CERT_PROVIDER set it is an
// Endpoint Verification helper printing that PEM file; with
// testcert.ECPSignerVar set it is an enterprise certificate proxy signer
// serving the key its config names (testcert.ServeECPSigner).
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
	if os.Getenv(testcert.ECPSignerVar) != "" {
		os.Exit(testcert.ServeECPSigner(os.Args[1]))
	}
	os.Exit(m.Run())
}
