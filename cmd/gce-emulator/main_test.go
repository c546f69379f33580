//go:build unix

package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
)

// roleVar makes the test binary play a part instead of running tests: the
// emulator itself (so the tests need no build of their own), or another
// local user's attacker.
const roleVar = "GCE_EMULATOR_TEST_ROLE"

// roles are the parts besides running tests, by roleVar's value.
var roles = map[string]func(){"emulator": main}

func TestMain(m *testing.M) {
	if play := roles[os.Getenv(roleVar)]; play != nil {
		play()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// emulatorCommand runs this test binary as gce-emulator with args.
func emulatorCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), roleVar+"=emulator")
	return cmd
}

// exports reads the "export K=V …" lines gce-emulator prints; a line of
// another kind is an error of the test's.
func exports(t *testing.T, out string) map[string]string {
	t.Helper()
	vars := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		line, ok := strings.CutPrefix(sc.Text(), "export ")
		if !ok {
			t.Errorf("not an export line: %q", sc.Text())
			continue
		}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			vars[k] = v
		}
	}
	return vars
}

// stopFromLines stops the emulator the lines name and waits until it is gone.
func stopFromLines(t *testing.T, vars map[string]string) {
	t.Helper()
	pid, err := strconv.Atoi(vars["GCE_EMULATOR_PID"])
	if err != nil || pid <= 1 {
		t.Fatalf("GCE_EMULATOR_PID=%q", vars["GCE_EMULATOR_PID"])
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(20 * time.Second); running(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("gce-emulator %d still running 20s after SIGTERM", pid)
		}
	}
}

// TestADCFileNotThroughPlantedTemp: --adc-file /tmp/adc.json used to write
// the project owner's key through /tmp/adc.json.tmp, a name another local
// user can create first (mode 0666) and read afterwards. The key must reach
// only a 0600 file, and the planted one stay empty.
func TestADCFileNotThroughPlantedTemp(t *testing.T) {
	srv, err := emulator.New(emulator.Config{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "adc.json")
	if err := os.WriteFile(path+".tmp", nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := writeADCFile(srv, path, "http://127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path + ".tmp"); len(b) > 0 {
		t.Errorf("the key went into the planted file (%d bytes)", len(b))
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Errorf("adc file: %v %v", fi, err)
	}
}
