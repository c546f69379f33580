//go:build unix

package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/testio"
)

// TestRunInterruptProcess: SIGINT to a `gkessh run` process mid-run makes
// it print what had finished and exit 130, and leaves no emulator tunnel
// and no remote process behind.
func TestRunInterruptProcess(t *testing.T) {
	w := startEmulator(t, "--nodes", "4", "--propagation-delay", "100ms")
	dir := t.TempDir()
	first, started := filepath.Join(dir, "first"), filepath.Join(dir, "started")
	if err := os.Mkdir(started, 0o755); err != nil {
		t.Fatal(err)
	}
	nap := fmt.Sprintf("%d.%06d", 400, time.Now().UnixNano()%1e6)
	script := fmt.Sprintf("if mkdir %s; then echo done; else mktemp -p %s >/dev/null; exec sleep %s; fi", first, started, nap)
	// --group prints a node's block only once its result is in, so the
	// interrupt below comes after the first node is known to be ok.
	cmd := w.command("gkessh", "run", "--all", "--group", "--", script)
	var out, errb testio.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	poll(t, 60*time.Second, func() bool {
		sleeping, _ := os.ReadDir(started)
		return strings.Count(out.String(), "done\n") == 1 && len(sleeping) == 3
	}, func() string { return out.String() + errb.String() })
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("gkessh run: %v, want exit status 130", err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("gkessh run did not stop on SIGINT:\n%s", errb.String())
	}
	if !strings.Contains(errb.String(), "4 nodes: 1 ok, 3 cancelled (") {
		t.Errorf("no summary of what finished:\n%s", errb.String())
	}
	poll(t, 20*time.Second, func() bool {
		return w.stats().LiveTunnels == 0 && exec.Command("pgrep", "-f", "sleep "+nap).Run() != nil
	}, func() string {
		return fmt.Sprintf("%+v; remote sleep still running: %v", w.stats(), exec.Command("pgrep", "-f", "sleep "+nap).Run() == nil)
	})
}

// poll waits until cond holds, failing with what() after timeout.
func poll(t testing.TB, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v: %s", timeout, what())
		}
	}
}

// TestRunOpenFileLimit: under an open-file limit of 256, soft and hard (so
// Go cannot raise it), all 300 nodes run: the descriptors a run holds
// follow -P, not the number of nodes, and a -P past what the limit allows
// is lowered, with a note, instead of failing nodes with EMFILE.
func TestRunOpenFileLimit(t *testing.T) {
	const nodes = 300
	w := startEmulator(t, "--nodes", fmt.Sprint(nodes), "--propagation-delay", "200ms")
	user := loginUser(t)
	for _, p := range []string{"32", "1000"} {
		out, err := w.command("sh", "-c", `ulimit -n 256 && exec gkessh "$@"`, "sh",
			"run", "--user", user, "-P", p, "--all", "--", "true").CombinedOutput()
		if want := fmt.Sprintf("%d nodes: %d ok\n", nodes, nodes); err != nil || !strings.HasSuffix(string(out), want) {
			t.Errorf("-P %s under ulimit -n 256: %v, output ends:\n%s", p, err, tail(string(out), 5))
		}
		note := "gkessh: working on 64 nodes at a time, not 1000: the open-file limit is 256 (ulimit -n)\n"
		if got := strings.Contains(string(out), note); got != (p == "1000") {
			t.Errorf("-P %s: note %q printed: %v", p, note, got)
		}
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
