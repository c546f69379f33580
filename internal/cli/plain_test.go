//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSSHPlain: --plain, as gcloud's, manages no key: with none of the
// user's own it fails without creating one, with a key the node does not
// take it fails without writing one, with one it takes it logs in; a flag
// about the managed key is refused with it.
func TestSSHPlain(t *testing.T) {
	e := newSSHTestEnv(t, "builtin", 1) // not parallel: SSH_AUTH_SOCK is emptied
	n := e.node(0).Name
	sshDir := filepath.Join(e.home, ".ssh")
	cases := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderr     []string
		keyPresent bool // the key pair exists after
	}{
		{"no key of the user's own", []string{"--plain", n, "--", "true"}, 255, "", []string{"--plain: no key to log in with: no key file " + filepath.Join(sshDir, "google_compute_engine")}, false},
		{"a flag about the managed key", []string{"--plain", "--key-expire-after", "1h", n, "--", "true"}, 255, "", []string{"--plain manages no key, so --key-expire-after would do nothing"}, false},
		{"a normal login adds the key", []string{n, "--", "true"}, 0, "", []string{"key to project metadata"}, true},
		{"the key the node takes", []string{"--plain", n, "--", "echo", "plain"}, 0, "plain\n", nil, true},
		{"a user the key is not for", []string{"--plain", "--user", "bob", n, "--", "true"}, 255, "", []string{"bob@" + n + " refused key", "--plain adds no key"}, true},
		{"dry run", []string{"--dry-run", "--plain", "--user", "bob", n, "--", "id"}, 0, "--plain: would write no key, and log in as bob with the key " + filepath.Join(sshDir, "google_compute_engine") + "\nand run \"id\"\n", nil, true},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			before := e.srv.Stats().MetadataWrites
			stdout, stderr, code := e.run(tc.args...)
			if code != tc.code || stdout != tc.stdout {
				t.Errorf("exit %d, stdout %q; want %d, %q; stderr:\n%s", code, stdout, tc.code, tc.stdout, stderr)
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if slices.Contains(tc.args, "--plain") {
				if got := e.srv.Stats().MetadataWrites; got != before {
					t.Errorf("--plain wrote metadata %d times", got-before)
				}
				if strings.Contains(stderr, "Added") || strings.Contains(stderr, "Generated") {
					t.Errorf("--plain managed a key:\n%s", stderr)
				}
			}
			_, err := os.Stat(filepath.Join(sshDir, "google_compute_engine"))
			if (err == nil) != tc.keyPresent {
				t.Errorf("key pair present: %v, want %v", err == nil, tc.keyPresent)
			}
		})
	}
}
