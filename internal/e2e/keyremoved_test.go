//go:build unix

package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestKeyRemovedUnderProxy: after the metadata key the proxy staged is
// removed by someone else (Terraform resets ssh-keys, a colleague cleans
// up), the warm proxy no longer leaves ssh at a bare "Permission denied"
// until its stamp expires: the session that failed says the key was gone
// and is back, and the next ssh works. A warm session with the key in
// place makes no API call.
func TestKeyRemovedUnderProxy(t *testing.T) {
	w, _, cfg := configuredNode(t)
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

	w.control("POST", "/control/project", map[string]any{"metadata": map[string]any{"ssh-keys": nil}}, nil)
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

// TestKeysCommandsUnderProxy: a gkessh keys command that changes this
// key's grant makes the next ssh through the proxy check it, not trust the
// stamp: the first ssh after `keys ensure` put back a key that had gone,
// or after `keys remove` took it away, logs in, waiting for the guest as a
// first login does. The guest takes 2 s to apply a change, so an ssh
// handed over at once on the stamp's word would be refused.
func TestKeysCommandsUnderProxy(t *testing.T) {
	for _, tc := range []struct {
		name string
		// change takes the key off the node; then gkessh keys does
		// what the user typed.
		change func(w *world, user string)
		keys   []string
	}{
		{"ensure after the key went elsewhere", func(w *world, user string) {
			w.control("POST", "/control/project", map[string]any{"metadata": map[string]any{"ssh-keys": nil}}, nil)
		}, []string{"ensure"}},
		{"remove --user", func(w *world, user string) {
			w.run("gkessh", "keys", "remove", "--user", user)
		}, nil},
		{"remove", func(w *world, user string) {
			w.run("gkessh", "keys", "remove") // this machine's key, as $USER
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, user, cfg := configuredNode(t, "--propagation-delay", "2s")
			n := w.nodes()[0].Name
			ssh := func(args ...string) (string, error) {
				out, err := w.command("ssh", append([]string{"-F", cfg, n}, args...)...).CombinedOutput()
				return string(out), err
			}
			if out, err := ssh("true"); err != nil {
				t.Fatalf("first ssh: %v\n%s", err, out)
			}
			tc.change(w, user)
			deadline := time.Now().Add(time.Minute)
			for installed(w, n, user) {
				if time.Now().After(deadline) {
					t.Fatal("the node still has the key a minute after it left metadata")
				}
				time.Sleep(100 * time.Millisecond)
			}
			if tc.keys != nil {
				w.run("gkessh", append([]string{"keys"}, append(tc.keys, "--user", user)...)...)
			}
			if out, err := ssh("echo", "in"); err != nil || !strings.Contains(out, "in") {
				t.Fatalf("ssh right after gkessh keys: %v\n%s", err, out)
			}
		})
	}
}

// installed reports whether node n's guest installed a key for user.
func installed(w *world, n, user string) bool {
	var keys map[string][]string
	w.control("GET", "/control/nodes/"+n+"/keys", nil, &keys)
	return len(keys[user]) > 0
}
