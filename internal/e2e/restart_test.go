//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// TestEmulatorRestart: after `kill $GCE_EMULATOR_PID` and a new start, a
// node gkessh knows still logs in: with --state-dir its host keys are the
// ones pinned (same id, same keys); without, the run's ids are its own, so
// the old pins do not apply to the new nodes.
func TestEmulatorRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"state dir", []string{"--state-dir", filepath.Join(t.TempDir(), "state")}},
		{"temporary", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--nodes", "1", "--propagation-delay", "100ms"}, tc.args...)
			w := startEmulator(t, args...)
			node := w.nodes()[0]
			w.run("gkessh", node.Name, "--", "true")
			known, err := os.ReadFile(filepath.Join(w.home, ".ssh", "google_compute_known_hosts"))
			if err != nil {
				t.Fatal(err)
			}
			w.stop()

			again := startEmulator(t, args...)
			if err := os.MkdirAll(filepath.Join(again.home, ".ssh"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(again.home, ".ssh", "google_compute_known_hosts"), known, 0o600); err != nil {
				t.Fatal(err)
			}
			again.run("gkessh", node.Name, "--", "true")
			n2 := again.nodes()[0]
			if tc.args != nil && n2.ID != node.ID {
				t.Errorf("with a state dir the id changed: %d, then %d", node.ID, n2.ID)
			}
			if tc.args == nil && n2.ID == node.ID {
				t.Errorf("two temporary runs share instance id %d", n2.ID)
			}
		})
	}
}
