// Package testbin builds this module's commands for tests that run them as
// real processes: each at most once per test binary, into a directory that
// Main removes when the tests end. They are built with the gkessh_testhooks
// tag, which lets tests shorten bounds they cannot wait out through
// GKESSH_TEST_* environment variables (tunnel/testhooks.go).
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	dir    string
	mu     sync.Mutex
	builds = map[string]*build{}
	// environ is the environment the go command runs in: this process's
	// before any test changed it. A test's t.Setenv of HOME or
	// XDG_CACHE_HOME (internal/cli's newTestEnv) would otherwise point a
	// build started meanwhile at an empty module and build cache in the
	// test's temporary directory: a cold build, modules downloaded again,
	// and read-only module files left there.
	environ = os.Environ()
)

type build struct {
	once sync.Once
	err  error
}

// Main runs the package's tests with a fresh binary directory and removes
// it afterwards. Call it from TestMain. The named commands start building
// at once, in the background (the tests that need them wait for them).
func Main(m *testing.M, start ...string) {
	d, err := os.MkdirTemp("", "gkessh-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir = d
	for _, name := range start {
		go get(name) // an error is reported by the Path that needs it
	}
	code := m.Run()
	// A background build still running would write into the removed
	// directory: wait for them.
	for _, name := range start {
		get(name)
	}
	os.RemoveAll(d)
	os.Exit(code)
}

// Dir builds the named commands (cmd/NAME) if they are not built yet and
// returns the directory holding them, to put first on a PATH.
func Dir(tb testing.TB, names ...string) string {
	tb.Helper()
	for _, name := range names {
		Path(tb, name)
	}
	return dir
}

// Path builds cmd/NAME on first use and returns the binary's path.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	if dir == "" {
		tb.Fatal("testbin: call testbin.Main from TestMain")
	}
	bin, err := get(name)
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

// get builds cmd/NAME once and returns its path.
func get(name string) (string, error) {
	mu.Lock()
	b := builds[name]
	if b == nil {
		b = &build{}
		builds[name] = b
	}
	mu.Unlock()
	bin := filepath.Join(dir, name)
	if runtime.GOOS == "windows" {
		bin += ".exe" // what exec finds, and Windows runs
	}
	b.once.Do(func() {
		// The tag lets tests shorten bounds they cannot wait out (GKESSH_TEST_*
		// environment variables); a user's build has no such knob.
		cmd := exec.Command("go", "build", "-tags", "gkessh_testhooks", "-o", bin, "github.com/gkessh/gkessh/cmd/"+name)
		cmd.Env = environ
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build ./cmd/%s: %w\n%s", name, err, out)
		}
	})
	return bin, b.err
}
