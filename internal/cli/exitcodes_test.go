//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/fleet"
	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/keys"
)

// TestExitCodes checks every row of the README's exit-code table:
// 0 ok; 1 API and other failures; 2 usage (bad flags, arguments, key files,
// user names) outside a login; 3 keys list --audit --fail found problems;
// 255 any failure of gkessh's own in `gkessh NODE` and `gkessh proxy`;
// otherwise the remote command's status.
func TestExitCodes(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	n := e.node(0).Name
	if _, stderr, code := e.run("keys", "ensure"); code != 0 {
		t.Fatalf("keys ensure: exit %d: %s", code, stderr)
	}
	// A key others can read, for the "bad key file" rows.
	open := filepath.Join(e.home, "open_key")
	key, err := os.ReadFile(filepath.Join(e.home, ".ssh", "google_compute_engine"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(open, key, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		code  int
		args  []string
		setup func()
		want  string // in stderr
	}{
		{0, []string{"keys", "list"}, nil, ""},
		{0, []string{"version"}, nil, ""},
		{0, []string{"help"}, nil, ""},
		{0, []string{n, "--", "true"}, nil, ""},
		{7, []string{n, "--", "sh", "-c", "exit 7"}, nil, ""},
		{2, []string{n, "--", "sh", "-c", "exit 2"}, nil, ""},
		{1, []string{"keys", "list", "no-such-node"}, nil, "no instance named"},
		{1, []string{"doctor", "no-such-node"}, nil, ""},
		{2, []string{"keys", "lst"}, nil, "did you mean list?"},
		{2, []string{"keys", "list", "--bogus"}, nil, "See 'gkessh"},
		{2, []string{"tunnel", n, "8080", "--listen", "1:2:3"}, nil, "--listen"},
		{2, []string{"keys", "ensure", "--key-file", open}, nil, "chmod"},
		{2, []string{"keys", "ensure", "--user", "bad user"}, nil, "user"},
		{2, []string{"proxy", n, "http"}, nil, "port"},
		{255, []string{n, "--bogus"}, nil, "See 'gkessh"},
		{255, []string{"--bogus", n}, nil, "See 'gkessh"},
		{255, []string{n, "--key-file", open, "--", "true"}, nil, "chmod"},
		{255, []string{"--user", "bad user", n}, nil, "user"},
		{255, []string{"no-such-node", "--", "true"}, nil, "no instance named"},
		{255, []string{"proxy", "no-such-node"}, nil, "no instance named"},
		// A mistyped command is a usage error, not a failed login:
		// no NODE, or a NODE one edit from a command that no
		// instance is named, or that fails on a command's flag.
		{2, []string{"config-shh"}, nil, "gkessh: config-shh is not a gkessh command, nor an instance of project demo-project: did you mean config-ssh?\nSee 'gkessh config-ssh --help'.\n"},
		{2, []string{"invetnory", "--", "true"}, nil, "did you mean inventory?"},
		{2, []string{"rnu"}, nil, "gkessh: rnu is not a gkessh command, nor an instance of project demo-project: did you mean run?\n"},
		{2, []string{"runn", "--all", "--", "id"}, nil, "gkessh: runn is not a gkessh command: did you mean run?\nSee 'gkessh run --help'.\n"},
		{2, nil, nil, "gkessh: no NODE given\nusage: gkessh [flags] [USER@]NODE [-- COMMAND...]\n       gkessh COMMAND [flags] ARGS...\ncommands: proxy, tunnel, keys,"},
		{2, []string{"-v", "--project", "p"}, nil, "usage: gkessh"},
		{2, []string{"help", "kyes"}, nil, "did you mean keys?"},
		{1, []string{"keys", "ensure"}, func() { e.seedProject(map[string]string{"enable-oslogin": "TRUE"}) }, "OS Login"},
		{3, []string{"keys", "list", "--audit", "--fail"}, func() {
			e.seedProject(map[string]string{"enable-oslogin": "FALSE", keys.MetadataKey: "alice:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ1YmJsZWJ1YmJsZWJ1YmJsZWJ1YmJsZWJ1YmJsZQ== alice"})
		}, "problems"},
		{0, []string{"keys", "list", "--audit"}, nil, ""},
	} {
		if tc.setup != nil {
			tc.setup()
		}
		_, stderr, code := e.run(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("gkessh %q: exit %d, want %d (stderr containing %q); stderr:\n%s", tc.args, code, tc.code, tc.want, stderr)
		}
	}
}

// TestHelpAndVersionCommands: `gkessh help` and `gkessh version` are
// commands, not node names: no API call.
func TestHelpAndVersionCommands(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"version"}, versionLine() + "\n"},
		{[]string{"help"}, "USAGE:"},
		{[]string{"--help"}, "USAGE:"},
		{[]string{"-h"}, "USAGE:"},
		{[]string{"keys", "--help"}, "USAGE:"},
		{[]string{"help", "keys"}, "gkessh keys ensure|list|remove|prune"},
		{[]string{"help", "keys", "list"}, "--audit"},
	} {
		before := e.srv.Stats().APICalls
		out, stderr, code := e.run(tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("gkessh %q: exit %d, stdout lacks %q:\n%s%s", tc.args, code, tc.want, out, stderr)
		}
		if n := e.srv.Stats().APICalls - before; n != 0 {
			t.Errorf("gkessh %q made %d API calls", tc.args, n)
		}
	}
}

// TestKeysAuditTable: the --audit table fits 120 columns however many
// problems a line has, naming each in a word; --format json keeps every
// detail.
func TestKeysAuditTable(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	shared := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(testkey.Public(t))))
	var lines []string
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		lines = append(lines, u+":"+shared+" "+u)
	}
	lines = append(lines, "erin:"+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(testkey.Public(t))))+
		` google-ssh {"userName":"erin","expireOn":"2020-01-01T00:00:00+0000"}`)
	e.seedProject(map[string]string{keys.MetadataKey: strings.Join(lines, "\n")})
	out, stderr, code := e.run("keys", "list", "--audit")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > 120 {
			t.Errorf("a line of %d columns: %q", n, line)
		}
	}
	for _, want := range []string{"permanent", "key-shared", "sudo-everywhere", "expired"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	js, _, _ := e.run("keys", "list", "--audit", "--format", "json")
	if !strings.Contains(js, "same key also grants user bob") {
		t.Errorf("json lacks the details:\n%s", js)
	}
}

// TestKeysAuditFix: each audited row says what to run about it, when one
// command does it without taking other lines along, and a line that does
// not parse shows invalid, not never.
func TestKeysAuditFix(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	key := func() string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(testkey.Public(t)))) }
	expiring := func(u, at string) string {
		return u + ":" + key() + ` google-ssh {"userName":"` + u + `","expireOn":"` + at + `"}`
	}
	e.seedProject(map[string]string{keys.MetadataKey: strings.Join([]string{
		expiring("old", "2020-01-01T00:00:00+0000"),   // expired
		"perm:" + key() + " perm",                     // permanent, its user's only line
		"mixed:" + key() + " mixed",                   // permanent, but its user has a good line too
		expiring("mixed", "2099-01-01T00:00:00+0000"), //
		"broken:ssh-ed25519 AAAAnotbase64 broken",     // invalid, with a user
		"no colon here",                               // invalid, no user
	}, "\n")})
	out, stderr, code := e.run("keys", "list", "--audit")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasSuffix(lines[0], "  FIX") {
		t.Fatalf("no FIX column:\n%s", out)
	}
	want := []struct{ user, expires, fix string }{
		{"old", "2020-01-01", "gkessh keys prune --all-expired"},
		{"perm", "never", "gkessh keys remove --user perm"},
		{"mixed", "never", "-"},
		{"mixed", "2099-01-01", "-"},
		{"broken", "invalid", "gkessh keys remove --user broken"},
		{"-", "invalid", "-"},
	}
	if len(lines) != len(want)+1 {
		t.Fatalf("%d rows, want %d:\n%s", len(lines)-1, len(want), out)
	}
	for i, w := range want {
		line := lines[i+1]
		f := strings.Fields(line)
		if f[1] != w.user || f[3] != w.expires || !strings.HasSuffix(line, "  "+w.fix) {
			t.Errorf("row %d: %q, want user %s, EXPIRES %s, FIX %q", i+1, line, w.user, w.expires, w.fix)
		}
	}
}

// TestFleetExitStatus: run's and cp's status is the worst of their nodes'
// results, 255 over 1 over 130, in whatever order the nodes are listed.
func TestFleetExitStatus(t *testing.T) {
	const (
		ok, skip, failed = fleet.OK, fleet.Skipped, fleet.Failed
		down, cancelled  = fleet.Unreachable, fleet.Cancelled
	)
	for _, tc := range []struct {
		statuses []fleet.Status
		want     int
	}{
		{nil, 0},
		{[]fleet.Status{ok, skip}, 0},
		{[]fleet.Status{ok, failed}, exitOther},
		{[]fleet.Status{cancelled, ok}, exitInterrupted},
		{[]fleet.Status{failed, cancelled}, exitOther},
		{[]fleet.Status{cancelled, failed}, exitOther},
		{[]fleet.Status{failed, down, cancelled}, exitFailure},
		{[]fleet.Status{cancelled, down}, exitFailure},
	} {
		var results []fleet.Result
		for _, s := range tc.statuses {
			results = append(results, fleet.Result{Status: s})
		}
		code := 0
		if err := exitStatus(results); err != nil {
			code = err.(exitError).code
		}
		if code != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.statuses, code, tc.want)
		}
	}
}
