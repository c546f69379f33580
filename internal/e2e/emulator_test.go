//go:build unix

package e2e

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/testbin"
)

// TestEmulatorBackground: `eval "$(gce-emulator --background)"` works as
// with ssh-agent: the command returns once the emulator serves, its lines
// point at it and name its pid, and SIGTERM to that pid stops it with its
// state directory and its log gone. The --env-file holds the same lines.
func TestEmulatorBackground(t *testing.T) {
	bin := filepath.Join(testbin.Dir(t, "gkessh", "gce-emulator"), "gce-emulator")
	envFile := filepath.Join(t.TempDir(), "env")
	cmd := exec.Command(bin, "--background", "--nodes", "1", "--env-file", envFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gce-emulator --background: %v\n%s", err, stderr.Bytes())
	}
	vars := map[string]string{}
	for _, kv := range parseExports(string(out)) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	pid, err := strconv.Atoi(vars["GCE_EMULATOR_PID"])
	if err != nil {
		t.Fatalf("no GCE_EMULATOR_PID in %q", out)
	}
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		if log := vars["GCE_EMULATOR_LOG"]; log != "" {
			os.RemoveAll(filepath.Dir(log)) // after SIGKILL
		}
	})
	t.Logf("ready after %v", time.Since(start))
	if b, err := os.ReadFile(envFile); err != nil || string(b) != string(out) || vars["GCE_EMULATOR_LOG"] == "" {
		t.Errorf("--env-file holds %q (%v), the printed lines are %q", b, err, out)
	}

	base := strings.TrimSuffix(vars["GKESSH_COMPUTE_ENDPOINT"], "/compute/v1/")
	req, _ := http.NewRequest("GET", base+"/control/nodes", nil)
	req.Header.Set("Authorization", "Bearer "+vars["GCE_EMULATOR_CONTROL_SECRET"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("emulator not serving after --background returned: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("control API with the printed secret: %s", resp.Status)
	}
	stateDir := filepath.Dir(vars["GKESSH_ACCESS_TOKEN_FILE"])
	if !fileExists(stateDir) {
		t.Fatalf("state dir %s missing while running", stateDir)
	}

	stopped := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); running(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gce-emulator %d still running 10s after SIGTERM", pid)
		}
	}
	t.Logf("stopped %v after SIGTERM", time.Since(stopped))
	if fileExists(stateDir) {
		t.Errorf("state dir %s left behind", stateDir)
	}
	if fileExists(vars["GCE_EMULATOR_LOG"]) {
		t.Errorf("log file GCE_EMULATOR_LOG=%q left behind", vars["GCE_EMULATOR_LOG"])
	}
}

// running reports whether pid is a live process; a zombie no one has reaped
// yet counts as gone. ps says so the same way on Linux and macOS.
func running(pid int) bool {
	out, err := exec.Command("ps", "-o", "stat=", "-p", strconv.Itoa(pid)).Output()
	state := strings.TrimSpace(string(out))
	return err == nil && state != "" && !strings.HasPrefix(state, "Z")
}
