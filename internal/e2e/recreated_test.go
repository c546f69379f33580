//go:build unix

package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// TestOpenSSHNodeRecreated: a node deleted and recreated under its name
// with a new id (a managed instance group's auto-repair) while the zone
// cache still holds the old id. The warm proxy dials with no API call, so
// ssh meets new host keys under the pinned HostKeyAlias and refuses them;
// the proxy sees ssh leave before finishing key exchange, looks the node
// up, and says what to do. A successful warm session makes no API call.
func TestOpenSSHNodeRecreated(t *testing.T) {
	w, user, cfg := configuredNode(t)
	old := w.nodes()[0]
	ssh := func() (string, error) {
		out, err := w.command("ssh", "-F", cfg, old.Name, "echo", "hi").CombinedOutput()
		return string(out), err
	}
	if out, err := ssh(); err != nil || !strings.Contains(out, "hi") {
		t.Fatalf("first ssh: %v\n%s", err, out)
	}
	w.control("POST", "/control/stats/reset", nil, nil)
	if out, err := ssh(); err != nil || !strings.Contains(out, "hi") {
		t.Fatalf("warm ssh: %v\n%s", err, out)
	}
	if n := w.stats().APICalls; n != 0 {
		t.Fatalf("a successful warm session made %d API calls, want 0", n)
	}

	w.control("DELETE", "/control/nodes/"+old.Name, nil, nil)
	var now emulator.NodeInfo
	w.control("POST", "/control/nodes", map[string]string{"name": old.Name, "zone": old.Zone}, &now)
	if now.ID == old.ID {
		t.Fatalf("the recreated node kept id %d", old.ID)
	}
	out, err := ssh()
	if err == nil {
		t.Fatalf("ssh to the recreated node succeeded against the old pinned host key:\n%s", out)
	}
	if !strings.Contains(out, "the node was recreated") || !strings.Contains(out, "gkessh config-ssh") {
		t.Fatalf("ssh's output does not say the node was recreated:\n%s", out)
	}
	// The lookup refreshed the zone cache: the next try says so before
	// it dials.
	tunnels := w.stats().Tunnels
	if out, err := ssh(); err == nil || !strings.Contains(out, "the node was recreated") {
		t.Fatalf("second ssh: %v\n%s", err, out)
	}
	if n := w.stats().Tunnels - tunnels; n != 0 {
		t.Errorf("the second try opened %d tunnels, want 0", n)
	}
	// What the message says to do is enough.
	w.run("gkessh", "config-ssh", "--user", user)
	if out, err := ssh(); err != nil || !strings.Contains(out, "hi") {
		t.Fatalf("ssh after config-ssh: %v\n%s", err, out)
	}
}

// configuredNode starts an emulator with one openssh-mode node (and
// emulatorArgs, which override its defaults) and writes the config-ssh
// block for the login user; it returns the world, the user and the ssh
// config's path.
func configuredNode(t *testing.T, emulatorArgs ...string) (w *world, user, cfg string) {
	t.Helper()
	need(t, "ssh")
	w = startEmulator(t, append([]string{"--sshd", "openssh", "--nodes", "1", "--propagation-delay", "100ms"}, emulatorArgs...)...)
	user = loginUser(t)
	w.run("gkessh", "config-ssh", "--user", user)
	return w, user, filepath.Join(w.home, ".ssh", "config")
}
