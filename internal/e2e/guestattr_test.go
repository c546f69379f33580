//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNodeWithoutGuestAttributes: a node whose guest attributes are off
// (no enable-guest-attributes, as on a VM that never set it: Google's
// default) answers getGuestAttributes with the 404 gcloud matches,
// "The resource 'hostkeys/' of type 'Guest Attribute' was not found."
// config-ssh and inventory still cover it, pinning nothing for it, and
// ssh through the block logs in, trusting its key on first use.
// What real GCE answers for disabled guest
// attributes is unverified; this is the answer for a namespace nothing
// wrote, which gcloud treats as "no host keys".
func TestNodeWithoutGuestAttributes(t *testing.T) {
	need(t, "ssh")
	w := startEmulator(t, "--sshd", "openssh", "--nodes", "2", "--propagation-delay", "300ms")
	nodes := w.nodes()
	off, on := nodes[0], nodes[1]
	w.control("POST", "/control/nodes/"+off.Name, map[string]any{"metadata": map[string]any{"enable-guest-attributes": nil}}, nil)

	w.run("gkessh", "config-ssh", "--user", loginUser(t))
	known, err := os.ReadFile(filepath.Join(w.home, ".ssh", "google_compute_known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct {
		id     uint64
		pinned bool
	}{{off.ID, false}, {on.ID, true}} {
		if got := strings.Contains(string(known), "compute."+strconv.FormatUint(n.id, 10)+" "); got != n.pinned {
			t.Errorf("compute.%d pinned: %v, want %v:\n%s", n.id, got, n.pinned, known)
		}
	}
	inv := w.output("gkessh", "inventory", "--list")
	for _, n := range nodes {
		if !strings.Contains(inv, `"`+n.Name+`"`) {
			t.Errorf("inventory lacks %s:\n%s", n.Name, inv)
		}
	}
	cfg := filepath.Join(w.home, ".ssh", "config")
	if out := w.output("ssh", "-F", cfg, off.Name, "echo", "in"); strings.TrimSpace(out) != "in" {
		t.Errorf("ssh %s: %q", off.Name, out)
	}
}
