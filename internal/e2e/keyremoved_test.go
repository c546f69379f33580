//go:build unix

package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestKeyRemovedUnderProxy: after the metadata key the proxy staged is
// removed (Terraform resets ssh-keys, a colleague cleans up, gkessh keys
// remove), the warm proxy no longer leaves ssh at a bare "Permission
// denied" until its stamp expires: the session that failed says the key
// was gone and is back, and the next ssh works. A warm session with the
// key in place makes no API call. (issue 20 item 6)
func TestKeyRemovedUnderProxy(t *testing.T) {
	w, user, cfg := configuredNode(t)
	n := w.nodes()[0].Name
	ssh := func(args ...string) (string, error) {
		out, err := w.command("ssh", append([]string{"-F", cfg, n}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := ssh("echo", "hi"); err != nil || !strings.Contains(out, "hi") {
		t.Fatalf("first ssh: %v\n%s", err, out)
	}
	w.control("POST", "/control/stats/reset", nil, nil)
	for _, args := range [][]string{{"echo", "hi"}, {"true"}} {
		if out, err := ssh(args...); err != nil {
			t.Fatalf("warm ssh %q: %v\n%s", args, err, out)
		}
	}
	if n := w.stats().APICalls; n != 0 {
		t.Fatalf("warm sessions with the key in place made %d API calls, want 0", n)
	}

	w.run("gkessh", "keys", "remove", "--user", user)
	// Until the guest has dropped the key, ssh still gets in.
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := ssh("true")
		if err != nil {
			if !strings.Contains(out, "refused your key: it was gone from project metadata ssh-keys") || !strings.Contains(out, "Run ssh again") {
				t.Fatalf("the failed ssh does not say the key was gone and is back:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node still takes the removed key after a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := ssh("echo", "back"); err != nil || !strings.Contains(out, "back") {
		t.Fatalf("ssh after the key was put back: %v\n%s", err, out)
	}
}
