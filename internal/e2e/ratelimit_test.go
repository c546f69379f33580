//go:build unix

package e2e

import (
	"strings"
	"testing"
)

// TestRunThrottledTunnels: with the relay taking 3 new tunnels a second
// and refusing the rest with HTTP 429, as IAP throttles (the emulator's
// tunnelRate fault), `gkessh run --all` over 12 nodes still runs the
// command on every node: each tunnel the relay refuses waits with jittered
// backoff and tries again. Without the retries the refused nodes failed.
func TestRunThrottledTunnels(t *testing.T) {
	w := startEmulator(t, "--nodes", "12", "--propagation-delay", "100ms")
	w.control("POST", "/control/faults", map[string]int{"tunnelRate": 3}, nil)
	out := w.run("gkessh", "run", "--all", "--", "echo", "ran")
	if n := strings.Count(out, ": ran\n"); n != 12 || !strings.Contains(out, "12 nodes: 12 ok") {
		t.Errorf("%d of 12 nodes ran the command:\n%s", n, out)
	}
	if st := w.stats(); st.TunnelsThrottled == 0 {
		t.Errorf("the relay refused no tunnel (%+v): the test did not throttle", st)
	}
}
