package knownhosts

import (
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/gkessh/gkessh/internal/testkey"
)

// TestAddFullDisk: a disk that fills during Add leaves known_hosts as it
// was, never with a truncated line. A child process plays the full disk
// with RLIMIT_FSIZE just above the file's size.
func TestAddFullDisk(t *testing.T) {
	if path := os.Getenv("GKESSH_TEST_FULL_DISK"); path != "" {
		fillUpAndAdd(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), KnownHostsName)
	first := line("compute.1", testkey.Public(t))
	if err := os.WriteFile(path, []byte(first), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAddFullDisk$")
	cmd.Env = append(os.Environ(), "GKESSH_TEST_FULL_DISK="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != first {
		t.Fatalf("known_hosts after a full disk:\n%q\nwant it unchanged:\n%q", b, first)
	}
}

// fillUpAndAdd lets files grow only 20 bytes past path's size, then adds a
// key, which must fail.
func fillUpAndAdd(t *testing.T, path string) {
	signal.Ignore(syscall.SIGXFSZ) // get EFBIG instead of dying
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	limit := uint64(fi.Size()) + 20
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	if err := (KnownHosts{Path: path}).Add(t.Context(), "compute.2", testkey.Public(t)); err == nil {
		t.Fatal("Add succeeded on a full disk")
	}
}
