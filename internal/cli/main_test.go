package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// binDir holds binaries the tests build on first use; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gkessh-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// gkesshBinary builds cmd/gkessh once per test run, for tests that need
// real processes (separate HOMEs, true concurrency), and returns its path.
func gkesshBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "gkessh")
	buildOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", bin, "../../cmd/gkessh").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/gkessh: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}
