//go:build unix

package e2e

import (
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestControlAttackAsAnotherUser replays an attack: another local user
// puts a key for root into ssh-keys through the control API of an
// emulator run by root, to get a root shell on its nodes. The control
// API refuses it without the secret, and the env file holding the secret is
// the emulator user's alone.
func TestControlAttackAsAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the attacker as nobody")
	}
	need(t, "curl")
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.ParseUint(nobody.Uid, 10, 32)
	gid, _ := strconv.ParseUint(nobody.Gid, 10, 32)
	w := startEmulator(t, "--nodes", "1")
	attack := []string{"-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", w.base + "/control/project",
		"-d", `{"metadata":{"ssh-keys":"root:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl attacker"}}`}
	asNobody := func(prog string, args ...string) (string, error) {
		cmd := exec.Command(prog, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if code, err := asNobody("curl", attack...); code != "401" {
		t.Errorf("control API as nobody: %q (%v), want 401", code, err)
	}
	if out, err := asNobody("cat", w.envFile); err == nil {
		t.Errorf("nobody read the env file: %q", out)
	}
	if fi, err := os.Stat(w.envFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("env file mode: %v, %v", fi.Mode(), err)
	}
	var proj struct {
		Metadata struct{ Items []struct{ Key string } }
	}
	w.control("GET", "/control/project", nil, &proj)
	if len(proj.Metadata.Items) != 0 {
		t.Errorf("project metadata changed: %+v", proj)
	}
	// The same request with the secret passes: the refusal was the secret.
	out, err := exec.Command("curl", append(attack, "-H", "Authorization: Bearer "+w.secret)...).Output()
	if string(out) != "200" {
		t.Errorf("control API with the secret: %q (%v)", out, err)
	}
}
