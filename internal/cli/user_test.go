//go:build unix

package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/keys"
)

// TestDefaultUserFollowsGcloud: with no --user, the key goes in under the
// user gcloud would pick: the local name when ASCII without spaces, else
// the gcloud account's (lowered as Python lowers), so both land in the
// same home directory; when it is not the local name, stderr says why,
// once, as gcloud warns.
func TestDefaultUserFollowsGcloud(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ local, account, want string }{
		{"user@corp.example", "other@example.com", "user@corp.example"},
		{"José", "Jose.Garcia@corp.example", "jose_garcia"},
		{"Jane Doe", "1jane@example.com", "g1jane"},
		{"İsmail", "İsmail@corp.example", "i_smail"}, // gcloud's str.lower(): i and a combining dot
	} {
		e := newEmuEnv(t, emulator.Config{Nodes: 1})
		var errb bytes.Buffer
		d := e.deps(Stdio{Err: &errb})
		d.localUser = func() (string, error) { return tt.local, nil }
		d.gcloud = func(section, name string) (string, error) {
			if section+"/"+name == "core/account" {
				return tt.account, nil
			}
			return "", nil
		}
		o := keysOptions{globalOptions: e.options()}
		if err := runKeysEnsure(context.Background(), o, d, Stdio{Out: io.Discard, Err: &errb}); err != nil {
			t.Fatalf("%s: %v", tt.local, err)
		}
		lines := keys.ParseLines(e.projectItems()["ssh-keys"])
		if len(lines) != 1 || lines[0].User != tt.want {
			t.Errorf("local %q, account %q: ssh-keys %q, want user %q", tt.local, tt.account, e.projectItems()["ssh-keys"], tt.want)
		}
		said := fmt.Sprintf("the local user name %q is not ASCII without spaces: using %q", tt.local, tt.want)
		if n := strings.Count(errb.String(), said); n != map[bool]int{true: 0, false: 1}[tt.want == tt.local] {
			t.Errorf("local %q: said %d times why the user is %q:\n%s", tt.local, n, tt.want, errb.String())
		}
	}
}

// TestDefaultUserChecked: a local login name (from $USER, $LOGNAME…) that
// cannot be a user name is refused as --user's would be, asking for
// --user, before anything is written: config-ssh would have written it as
// User, which ssh runs through %r in the ProxyCommand. A login exits 255,
// its own failure, as with a bad --user.
func TestDefaultUserChecked(t *testing.T) {
	t.Parallel()
	e := newEmuEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	for _, local := range []string{"r$(touch${IFS}PWNED)", "x;id", "a`b`", "-x", "a\nb"} {
		for _, args := range [][]string{{"config-ssh"}, {"inventory", "--list"}, {"keys", "ensure"}, {node, "--", "true"}, {"run", node, "--", "true"}} {
			var out, errb bytes.Buffer
			d := e.deps(Stdio{Err: &errb})
			d.localUser = func() (string, error) { return local, nil }
			code := mainWith(context.Background(), slices.Concat([]string{"gkessh"}, args), Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}, d)
			want := exitUsage
			if args[0] == node {
				want = exitFailure // a login's own failure, as for --user (TestUserAcceptedAsGcloud)
			}
			if code != want || !strings.Contains(errb.String(), fmt.Sprintf("the local user name %q cannot be the remote user", local)) || !strings.Contains(errb.String(), "pass --user") {
				t.Errorf("USER=%q gkessh %s: exit %d, want %d asking for --user:\n%s%s", local, strings.Join(args, " "), code, want, out.String(), errb.String())
			}
		}
	}
	if w := e.srv.Stats().MetadataWrites; w != 0 {
		t.Errorf("%d metadata writes", w)
	}
	if _, err := os.Stat(filepath.Join(e.home, ".ssh", "config")); err == nil {
		t.Error("~/.ssh/config written")
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
	for u, why := range map[string]string{
		"bad user": "the guest agent would skip the key: user name \"bad user\" has whitespace",
		// The agent takes these; useradd then refuses them.
		"-x": "useradd refuses", "a/b": "useradd refuses", ".": "useradd refuses", "..": "useradd refuses",
		"a:b": "':'", "r;id": "shell characters",
	} {
		_, stderr, code := e.run("--user", u, n.Name, "--", "true")
		if code != 255 || !strings.Contains(stderr, why) || why == "useradd refuses" && strings.Contains(stderr, "would skip") {
			t.Errorf("--user %q: exit %d, stderr %q; want 255 (a login's own failure) and %q", u, code, stderr, why)
		}
	}
}
