//go:build unix

package e2e

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// goChildWait is how long a go command's output may stay open after it
// exits: its telemetry uploader can outlive it holding our pipes.
const goChildWait = 10 * time.Second

// moduleRoot is the directory holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// TestStaticBuild: `make build` makes what the README promises, static
// binaries that link no C library (no ELF interpreter, no shared library).
func TestStaticBuild(t *testing.T) {
	need(t, "make")
	if runtime.GOOS != "linux" {
		t.Skip("checks ELF binaries")
	}
	bin := t.TempDir()
	cmd := exec.Command("make", "build", "BIN="+bin)
	cmd.Dir = moduleRoot(t)
	cmd.WaitDelay = goChildWait
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	for _, name := range []string{"gkessh", "gce-emulator"} {
		f, err := elf.Open(filepath.Join(bin, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s has an ELF interpreter: it is dynamically linked", name)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s links %v", name, libs)
		}
		f.Close()
	}
}

// TestLintToolPinned: `make lint` runs staticcheck through go.mod's tool
// directive, so once its module is in the module cache it needs no
// network. go test downloads only what the tests import, so on a fresh
// machine the first run fetches staticcheck as make lint would; without a
// network that first run is skipped, not failed.
func TestLintToolPinned(t *testing.T) {
	if testing.Short() {
		t.Skip("builds staticcheck")
	}
	staticcheck := func(env ...string) (string, error) {
		cmd := exec.Command("go", "tool", "staticcheck", "-version")
		cmd.Dir = moduleRoot(t)
		cmd.Env = append(os.Environ(), env...)
		cmd.WaitDelay = goChildWait
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := staticcheck("GOFLAGS=-mod=mod"); err != nil {
		t.Skipf("staticcheck's module is not in the module cache and could not be fetched (%v): "+
			"the offline check needs it there once (make lint fetches it)\n%s", err, out)
	}
	if out, err := staticcheck("GOPROXY=off", "GOFLAGS=-mod=mod"); err != nil || !strings.Contains(out, "staticcheck") {
		t.Fatalf("go tool staticcheck with GOPROXY=off: %v\n%s", err, out)
	}
}
