//go:build unix

package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStopUnsetsEveryLine: the lines the emulator prints say how to undo
// them, and `eval "$(gce-emulator --stop)"` stops the emulator and unsets
// every variable they set, so no real gcloud or gkessh in that shell keeps
// pointing at a loopback port another user may bind later. The control
// header file lets curl send the secret without it on a command line.
func TestStopUnsetsEveryLine(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	envFile := filepath.Join(dir, "emu.env")
	em := emulatorCommand(t, "--nodes", "1", "--env-file", envFile)
	em.Stderr = os.Stderr
	if err := em.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { em.Wait(); close(exited) }()
	t.Cleanup(func() {
		em.Process.Kill()
		<-exited
	})
	var env []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if env, err = os.ReadFile(envFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no env file after 30s")
		}
	}
	if !strings.Contains(string(env), stopHint) {
		t.Errorf("the lines do not say how to undo them:\n%s", env)
	}
	vars := exports(t, string(env))
	for name := range vars {
		if !slices.Contains(exportedNames, name) {
			t.Errorf("%s is exported but --stop would not unset it", name)
		}
	}

	header := vars["GCE_EMULATOR_CONTROL_HEADER"]
	fi, err := os.Stat(header)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control header file %q: %v, %v; want 0600", header, fi, err)
	}
	line, _ := os.ReadFile(header)
	if string(line) != "Authorization: Bearer "+vars["GCE_EMULATOR_CONTROL_SECRET"]+"\n" {
		t.Errorf("control header file holds %q", line)
	}
	req, _ := http.NewRequest("GET", strings.TrimSuffix(vars["GKESSH_COMPUTE_ENDPOINT"], "/compute/v1/")+"/control/nodes", nil)
	k, v, _ := strings.Cut(strings.TrimSpace(string(line)), ": ")
	req.Header.Set(k, v)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("control API with the header file's line: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	exe, _ := os.Executable()
	sh := exec.Command("bash", "-c", `set -e; eval "$(cat "$1")"; eval "$("$2" --stop)"; env`, "bash", envFile, exe)
	sh.Env = append(os.Environ(), roleVar+"=emulator")
	var stderr strings.Builder
	sh.Stderr = &stderr
	out, err := sh.Output()
	if err != nil {
		t.Fatalf("eval, then --stop: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopped") {
		t.Errorf("--stop said: %q", stderr.String())
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		name, _, _ := strings.Cut(sc.Text(), "=")
		if _, set := vars[name]; set {
			t.Errorf("still set after --stop: %s", sc.Text())
		}
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the emulator still runs after --stop")
	}
	for _, p := range []string{envFile, filepath.Dir(vars["GKESSH_ACCESS_TOKEN_FILE"])} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
}
