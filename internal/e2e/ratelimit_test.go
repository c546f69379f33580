//go:build unix

package e2e

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// TestRunThrottledTunnels: with the relay taking 3 new tunnels a second
// and refusing the rest with HTTP 429, as IAP throttles (the emulator's
// tunnelRate fault), `gkessh run --all` over 12 nodes still runs the
// command on every node: each tunnel the relay refuses waits with jittered
// backoff and tries again. Without the retries the refused nodes failed.
// The summary says how many tunnels waited, and how long.
func TestRunThrottledTunnels(t *testing.T) {
	w := startEmulator(t, "--nodes", "12", "--propagation-delay", "100ms")
	w.control("POST", "/control/faults", map[string]int{"tunnelRate": 3}, nil)
	out := w.run("gkessh", "run", "--all", "--", "echo", "ran")
	if n := strings.Count(out, ": ran\n"); n != 12 || !strings.Contains(out, "12 nodes: 12 ok") {
		t.Errorf("%d of 12 nodes ran the command:\n%s", n, out)
	}
	st := w.stats()
	if st.TunnelsThrottled == 0 {
		t.Errorf("the relay refused no tunnel (%+v): the test did not throttle", st)
	}
	checkThrottled(t, out, "tunnel", st.TunnelsThrottled)
}

// checkThrottled checks that the run's summary says n of what waited.
func checkThrottled(t *testing.T, out, what string, n int64) {
	t.Helper()
	if n != 1 {
		what += "s"
	}
	re := regexp.MustCompile(`(?m)^12 nodes: 12 ok; throttled: .*\b` + strconv.FormatInt(n, 10) + " " + what + ` waited [0-9.]+m?s in all`)
	if !re.MatchString(out) {
		t.Errorf("the summary does not say %d %s waited:\n%s", n, what, out)
	}
}

// TestCopyThrottled: a copy to one node under the project's API rate
// (1 call a second) still arrives, and with no fleet summary to carry it,
// says on its own line how many calls waited, as many as the emulator
// refused; before, only -v showed the waits.
func TestCopyThrottled(t *testing.T) {
	w := startEmulator(t, "--nodes", "1", "--propagation-delay", "100ms")
	node := w.nodes()[0].Name
	src := filepath.Join(w.home, "payload")
	writeRandom(t, src, 1<<20)
	w.control("POST", "/control/faults", emulator.Faults{APIRate: 1}, nil)
	w.control("POST", "/control/stats/reset", nil, nil)
	out := w.run("gkessh", "cp", src, node+":"+src+".copy")
	st := w.stats()
	if st.RateLimited == 0 {
		t.Fatalf("no call was refused (%d calls): the copy tested nothing\n%s", st.APICalls, out)
	}
	if a, b := sha256File(t, src), sha256File(t, src+".copy"); a != b {
		t.Errorf("the copy differs: %s, want %s", b, a)
	}
	what := "API calls"
	if st.RateLimited == 1 {
		what = "API call"
	}
	re := regexp.MustCompile(`(?m)^gkessh: throttled: ` + strconv.FormatInt(st.RateLimited, 10) + " " + what + ` waited [0-9.hms]+ in all$`)
	if !re.MatchString(out) {
		t.Errorf("the copy does not say %d %s waited:\n%s", st.RateLimited, what, out)
	}
}

// TestRunUnderAPIRateLimit: with the project's Compute API rate spent
// (the emulator's APIRate fault: 4 calls a second), the calls a fleet run
// makes get 429 RESOURCE_EXHAUSTED; gkessh waits and makes them again, and
// every node still completes.
func TestRunUnderAPIRateLimit(t *testing.T) {
	w := startEmulator(t, "--nodes", "12", "--propagation-delay", "100ms")
	w.control("POST", "/control/faults", emulator.Faults{APIRate: 4}, nil)
	w.control("POST", "/control/stats/reset", nil, nil)
	out := w.run("gkessh", "run", "--all", "--", "true")
	if !strings.Contains(out, "12 nodes: 12 ok") {
		t.Errorf("not every node completed:\n%s", out)
	}
	if st := w.stats(); st.RateLimited == 0 {
		t.Errorf("no call was refused (%d calls): the run tested nothing", st.APICalls)
	} else {
		t.Logf("%d of %d API calls refused and made again", st.RateLimited, st.APICalls)
		checkThrottled(t, out, "API call", st.RateLimited)
	}
}
