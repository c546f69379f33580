//go:build unix

package cli

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/keys"
)

// TestDefaultUserFollowsGcloud: with no --user, the key goes in under the
// user gcloud would pick: the local name when ASCII without spaces, else
// the gcloud account's, so both land in the same home directory.
func TestDefaultUserFollowsGcloud(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ local, account, want string }{
		{"user@corp.example", "other@example.com", "user@corp.example"},
		{"José", "Jose.Garcia@corp.example", "jose_garcia"},
		{"Jane Doe", "1jane@example.com", "g1jane"},
	} {
		e := newEmuEnv(t, emulator.Config{Nodes: 1})
		d := e.deps(Stdio{Err: io.Discard})
		d.localUser = func() (string, error) { return tt.local, nil }
		d.gcloud = func(section, name string) (string, error) {
			if section+"/"+name == "core/account" {
				return tt.account, nil
			}
			return "", nil
		}
		o := keysOptions{globalOptions: e.options()}
		if err := runKeysEnsure(context.Background(), o, d, Stdio{Out: io.Discard, Err: io.Discard}); err != nil {
			t.Fatalf("%s: %v", tt.local, err)
		}
		lines := keys.ParseLines(e.projectItems()["ssh-keys"])
		if len(lines) != 1 || lines[0].User != tt.want {
			t.Errorf("local %q, account %q: ssh-keys %q, want user %q", tt.local, tt.account, e.projectItems()["ssh-keys"], tt.want)
		}
	}
}

// TestUserAcceptedAsGcloud: a user name gcloud takes and the guest agent
// installs (non-ASCII, '@', long) logs in; one the agent would skip is
// refused up front with the reason.
func TestUserAcceptedAsGcloud(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	n := e.node(0)
	for _, u := range []string{"josé_ñ", "alice@example.com", strings.Repeat("u", 40)} {
		stdout, stderr, code := e.run("--user", u, n.Name, "--", "echo", "in")
		if code != 0 || stdout != "in\n" {
			t.Errorf("--user %q: exit %d, stdout %q, stderr:\n%s", u, code, stdout, stderr)
		}
	}
	for u, why := range map[string]string{"bad user": "whitespace", "-x": "starts with '-'", "a/b": "path", "a:b": "':'", "r;id": "shell characters"} {
		_, stderr, code := e.run("--user", u, n.Name, "--", "true")
		if code != 255 || !strings.Contains(stderr, why) {
			t.Errorf("--user %q: exit %d, stderr %q; want 255 (a login's own failure) and %q", u, code, stderr, why)
		}
	}
}
