package cli

import (
	"testing"

	"github.com/gkessh/gkessh/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m, "gkessh") }

// gkesshBinary is cmd/gkessh built once per test run, for tests that need
// real processes (separate HOMEs, true concurrency).
func gkesshBinary(t *testing.T) string { return testbin.Path(t, "gkessh") }
