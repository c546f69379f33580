//go:build unix

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// inventoryScript writes the two-line wrapper the README documents, so
// Ansible runs `gkessh inventory` as a dynamic inventory.
func inventoryScript(t testing.TB, w *world, user string) string {
	t.Helper()
	path := filepath.Join(w.home, "gkessh-inventory")
	script := fmt.Sprintf("#!/bin/sh\nexec gkessh inventory --user %s \"$@\"\n", user)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// ansibleEnv keeps Ansible's ControlPersist sockets in HOME, and stops the
// masters when the test ends so no ssh outlives it.
func ansibleEnv(t testing.TB, w *world) {
	cp := filepath.Join(w.home, "cp")
	w.env = append(w.env, "ANSIBLE_SSH_CONTROL_PATH_DIR="+cp)
	t.Cleanup(func() { stopMasters(cp) })
}

// stopMasters ends the ControlPersist masters whose sockets are in dir.
func stopMasters(dir string) {
	socks, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, s := range socks {
		exec.Command("ssh", "-o", "ControlPath="+s, "-O", "exit", "placeholder").Run()
	}
}

func TestAnsible(t *testing.T) {
	need(t, "ssh", "ansible", "ansible-inventory")
	w := startEmulator(t, "--sshd", "openssh", "--nodes", "3", "--propagation-delay", "300ms")
	ansibleEnv(t, w)
	user := loginUser(t)
	inv := inventoryScript(t, w, user)

	graph := w.output("ansible-inventory", "-i", inv, "--graph")
	for _, g := range []string{"@zone_us_west1_a:", "@cluster_cluster:", "@pool_default_pool:"} {
		if !strings.Contains(graph, g) {
			t.Errorf("ansible-inventory --graph lacks %s:\n%s", g, graph)
		}
	}
	out := w.run("ansible", "all", "-i", inv, "-m", "ping", "-f", "10")
	if n := strings.Count(out, "SUCCESS"); n != 3 {
		t.Fatalf("ping: %d of 3 nodes answered:\n%s", n, out)
	}
	before := w.stats()
	out = w.run("ansible", "all", "-i", inv, "-m", "shell", "-a", "id -un")
	for _, n := range w.nodes() {
		if !strings.Contains(out, n.Name+" | CHANGED | rc=0 >>\n"+user+"\n") {
			t.Errorf("%s did not answer %q:\n%s", n.Name, user, out)
		}
	}
	// ControlPersist: the second run rides the masters of the first, so
	// no new tunnel is opened.
	if after := w.stats(); after.Tunnels != before.Tunnels {
		t.Errorf("second run opened %d new tunnels; ControlMaster was not reused", after.Tunnels-before.Tunnels)
	}
}

// TestAnsibleSlowGuest: the first run after a new key reaches a node whose
// guest takes longer to install it than Ansible's ssh waits for a banner
// by default (10 s): the inventory's ansible_ssh_timeout covers the
// proxy's propagation wait.
func TestAnsibleSlowGuest(t *testing.T) {
	need(t, "ssh", "ansible")
	w := startEmulator(t, "--sshd", "openssh", "--nodes", "1", "--propagation-delay", "12s")
	ansibleEnv(t, w)
	inv := inventoryScript(t, w, loginUser(t))
	out := w.run("ansible", "all", "-i", inv, "-m", "ping")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("ping through a guest 12 s slow:\n%s", out)
	}
}

// TestAnsibleFanOut pings 20 nodes at once from a HOME with no key: the
// 20 proxies must agree on one metadata write, with no 412 storm.
func TestAnsibleFanOut(t *testing.T) {
	need(t, "ssh", "ansible")
	w := startEmulator(t, "--sshd", "openssh", "--nodes", "20", "--propagation-delay", "300ms")
	ansibleEnv(t, w)
	inv := inventoryScript(t, w, loginUser(t))
	out := w.run("ansible", "all", "-i", inv, "-m", "ping", "-f", "20")
	if n := strings.Count(out, "SUCCESS"); n != 20 {
		t.Fatalf("ping: %d of 20 nodes answered:\n%s", n, out)
	}
	if s := w.stats(); s.MetadataWrites != 1 {
		t.Fatalf("metadata written %d times, want exactly 1", s.MetadataWrites)
	}
}
