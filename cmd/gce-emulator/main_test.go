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

// TestRootWarning: run as root, the emulator's nodes run their sessions
// as root on this machine (a README example would write the host's
// /etc). It says so on start, where its user sees it: on the
// terminal in the foreground, and from the command that starts it with
// --background (the background emulator's own output goes to its log).
func TestRootWarning(t *testing.T) {
	for _, c := range []struct {
		euid int
		sshd string
		want string
	}{
		{0, "builtin", "every SSH session on its nodes runs as root on this machine"},
		{0, "openssh", "runs as this machine's USER, root included"},
		{1000, "builtin", ""},
		{1000, "openssh", ""},
	} {
		got := rootWarning(c.euid, c.sshd)
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("rootWarning(%d, %s) = %q, want it to say %q", c.euid, c.sshd, got, c.want)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: the started emulator has nothing to warn about")
	}
	t.Run("background", func(t *testing.T) {
		em := emulatorCommand(t, "--background", "--nodes", "0")
		var stderr strings.Builder
		em.Stderr = &stderr
		out, err := em.Output()
		if err != nil {
			t.Fatalf("gce-emulator --background: %v\n%s", err, stderr.String())
		}
		stopFromLines(t, exports(t, string(out)))
		if n := strings.Count(stderr.String(), "WARNING: running as root"); n != 1 {
			t.Errorf("the starting command warned %d times, want once:\n%s", n, stderr.String())
		}
	})
	t.Run("foreground", func(t *testing.T) {
		em := emulatorCommand(t, "--nodes", "0")
		var stderr strings.Builder
		em.Stderr = &stderr
		stdout, err := em.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := em.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		em.Process.Signal(syscall.SIGTERM)
		em.Wait()
		if !strings.HasPrefix(line, "export ") {
			t.Fatalf("first line %q\n%s", line, stderr.String())
		}
		if !strings.Contains(stderr.String(), "WARNING: running as root") {
			t.Errorf("no warning on stderr:\n%s", stderr.String())
		}
	})
}
