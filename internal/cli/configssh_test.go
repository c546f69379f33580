//go:build unix

package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/knownhosts"
	"github.com/gkessh/gkessh/sshconfig"
)

func TestConfigSSH(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 3})
	cfg := filepath.Join(e.home, ".ssh", "config")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o700); err != nil {
		t.Fatal(err)
	}
	mine := "Host *\n  ServerAliveInterval 30\n\n# my own note\nHost bastion\n  User me"
	if err := os.WriteFile(cfg, []byte(mine), 0o640); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		b, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	if out, errOut, code := e.run("config-ssh", "--dry-run", "--user", "nat"); code != 0 || !strings.Contains(out, "+    ProxyCommand") || read() != mine {
		t.Fatalf("dry run: code %d, stdout %q, stderr %q; file changed: %v", code, out, errOut, read() != mine)
	}
	if _, errOut, code := e.run("config-ssh", "--user", "nat"); code != 0 {
		t.Fatalf("config-ssh: exit %d: %s", code, errOut)
	}
	got := read()
	if !strings.HasSuffix(got, "\n"+mine) {
		t.Fatalf("text outside the block changed:\n%s", got)
	}
	if fi, err := os.Stat(cfg); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode not kept: %v %v", fi.Mode(), err)
	}
	known, err := os.ReadFile(filepath.Join(e.home, ".ssh", knownhosts.KnownHostsName))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range e.srv.Nodes() {
		n := e.srv.Node(name)
		alias := knownhosts.HostAlias(n.ID)
		for _, want := range []string{"Host " + name + "\n", "HostKeyAlias " + alias + "\n", "--zone " + n.Zone + " %h %p\n", "StrictHostKeyChecking yes\n", "User nat\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("block lacks %q", want)
			}
		}
		if !strings.Contains(string(known), alias+" ssh-ed25519 ") {
			t.Errorf("known_hosts has no ed25519 key for %s (%s)", name, alias)
		}
	}

	if _, errOut, code := e.run("config-ssh", "--user", "nat"); code != 0 || !strings.Contains(errOut, "up to date") || read() != got {
		t.Fatalf("second run not idempotent: exit %d, %s", code, errOut)
	}
	if _, errOut, code := e.run("config-ssh", "--user", "nat", "--filter", "name eq gke-cluster-default-pool-41ef50b9-.*"); code != 0 {
		t.Fatalf("filter: %s", errOut)
	}
	if n := strings.Count(read(), "\nHost gke-"); n != 1 {
		t.Fatalf("filter kept %d hosts, want 1:\n%s", n, read())
	}
	if _, errOut, code := e.run("config-ssh", "--remove"); code != 0 || read() != mine {
		t.Fatalf("remove: exit %d %s; file now\n%q", code, errOut, read())
	}
}

func TestConfigSSHPattern(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 2})
	if _, errOut, code := e.run("config-ssh", "--pattern", "gke-cluster-*"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(filepath.Join(e.home, ".ssh", "config"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "Host gke-cluster-*\n") || strings.Contains(string(b), "HostKeyAlias") || strings.Contains(string(b), "--zone") {
		t.Fatalf("pattern block:\n%s", b)
	}
	known, err := os.ReadFile(filepath.Join(e.home, ".ssh", knownhosts.KnownHostsName))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range e.srv.Nodes() {
		if !strings.Contains(string(known), name+" ssh-ed25519 ") {
			t.Errorf("known_hosts lacks %s", name)
		}
	}
}

func TestConfigSSHBadInput(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	cfg := filepath.Join(e.home, ".ssh", "config")
	os.MkdirAll(filepath.Dir(cfg), 0o700)
	twice := sshconfig.Render("demo-project", nil)
	broken := string(twice) + string(twice)
	if err := os.WriteFile(cfg, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"two managed blocks", []string{"config-ssh"}, exitOther},
		{"bad filter", []string{"config-ssh", "--filter", "("}, exitUsage},
		{"bad strict mode", []string{"config-ssh", "--strict-host-key-checking", "maybe"}, exitUsage},
		{"argument", []string{"config-ssh", "extra"}, exitUsage},
		{"hostile user", []string{"config-ssh", "--user", "r$(touch x)"}, exitUsage},
		{"hostile user in inventory", []string{"inventory", "--list", "--user", "r;id"}, exitUsage},
		{"empty user", []string{"config-ssh", "--user", ""}, exitUsage},
		{"hostile pattern", []string{"config-ssh", "--pattern", "* !x"}, exitUsage},
		// A login's usage errors exit 255, as ssh's do.
		{"hostile node", []string{"..", "--", "id"}, 255},
		{"hostile zone", []string{"gke-x", "--zone", "a\nb", "--", "id"}, 255},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := e.run(tt.args...)
			if code != tt.code || errOut == "" {
				t.Fatalf("exit %d (want %d), stderr %q", code, tt.code, errOut)
			}
			if b, _ := os.ReadFile(cfg); string(b) != broken {
				t.Fatal("config changed")
			}
		})
	}
}

// TestConfigSSHPatternCatchesOthers: a --pattern that starts with a
// wildcard would write a Host entry catching hosts that are no nodes
// (Host * sends every ssh, github.com's too, through gkessh proxy): it is
// refused before any call or write; one that starts with the names'
// prefix is written.
func TestConfigSSHPatternCatchesOthers(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	cfg := filepath.Join(e.home, ".ssh", "config")
	for _, p := range []string{"*", "?*", "**", "*-pool-*"} {
		_, errOut, code := e.run("config-ssh", "--pattern", p)
		if code != exitUsage || !strings.Contains(errOut, "starts with a wildcard") {
			t.Errorf("--pattern %q: exit %d, stderr %q; want a usage error", p, code, errOut)
		}
	}
	if _, err := os.Stat(cfg); err == nil {
		t.Error("a config was written")
	}
	if n := e.srv.Stats().APICalls; n != 0 {
		t.Errorf("%d API calls", n)
	}
	if _, errOut, code := e.run("config-ssh", "--pattern", "gke-*"); code != 0 {
		t.Errorf("--pattern gke-*: exit %d:\n%s", code, errOut)
	}
}

func TestLineDiff(t *testing.T) {
	got := string(lineDiff([]byte("a\nb\nc\n"), []byte("a\nx\nc\n")))
	if want := " a\n-b\n+x\n c\n"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

// sides rebuilds both blocks from a diff.
func sides(diff string) (old, new string) {
	for _, l := range strings.SplitAfter(diff, "\n") {
		if l == "" {
			continue
		}
		switch l[0] {
		case ' ':
			old, new = old+l[1:], new+l[1:]
		case '-':
			old += l[1:]
		case '+':
			new += l[1:]
		}
	}
	return old, new
}

func hostBlock(names ...string) string {
	var hosts []sshconfig.Host
	for _, n := range names {
		hosts = append(hosts, sshconfig.Host{Pattern: n, Options: [][2]string{{"HostName", n}, {"User", "nat"}}})
	}
	return string(sshconfig.Render("p", hosts))
}

func TestBlockDiff(t *testing.T) {
	tests := []struct {
		name, a, b string
		want       string // the changed lines, in order
	}{
		{"same", hostBlock("a", "b"), hostBlock("a", "b"), ""},
		{"added", hostBlock("a", "c"), hostBlock("a", "b", "c"), "+Host b\n+    HostName b\n+    User nat\n"},
		{"removed", hostBlock("a", "b"), hostBlock("b"), "-Host a\n-    HostName a\n-    User nat\n"},
		{"changed", hostBlock("a"), strings.Replace(hostBlock("a"), "User nat", "User root", 1), "-    User nat\n+    User root\n"},
		{"moved", hostBlock("a", "b"), hostBlock("b", "a"), "-Host a\n-    HostName a\n-    User nat\n+Host a\n+    HostName a\n+    User nat\n"},
		{"from nothing", "", hostBlock("a"), "+" + strings.ReplaceAll(strings.TrimSuffix(hostBlock("a"), "\n"), "\n", "\n+") + "\n"},
		{"duplicate entries", hostBlock("a", "a"), hostBlock("a"), "-Host a\n-    HostName a\n-    User nat\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(blockDiff([]byte(tt.a), []byte(tt.b)))
			if old, new := sides(got); old != tt.a || new != tt.b {
				t.Fatalf("the diff does not rebuild both blocks:\n%s", got)
			}
			var changed string
			for _, l := range strings.SplitAfter(got, "\n") {
				if l != "" && l[0] != ' ' {
					changed += l
				}
			}
			if changed != tt.want {
				t.Errorf("changed lines:\n%s\nwant:\n%s", changed, tt.want)
			}
		})
	}
}

// TestBlockDiffMemory: config-ssh --dry-run at 1000 nodes, every entry
// changed, takes a few MB (an LCS over all lines took 989 MB).
func TestBlockDiffMemory(t *testing.T) {
	var before, after []string
	for i := range 1000 {
		before = append(before, fmt.Sprintf("gke-node-%04d", i))
		after = append(after, fmt.Sprintf("gke-node-%04d", i+500))
	}
	a := strings.ReplaceAll(hostBlock(before...), "User nat", "User root")
	b := hostBlock(after...)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	diff := blockDiff([]byte(a), []byte(b))
	runtime.ReadMemStats(&m1)
	if old, new := sides(string(diff)); old != a || new != b {
		t.Fatal("the diff does not rebuild both blocks")
	}
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 16<<20 {
		t.Errorf("diff of two %d-line blocks allocated %d MB, want < 16", strings.Count(a, "\n"), alloc>>20)
	} else {
		t.Logf("allocated %.1f MB for %d KB of blocks", float64(alloc)/(1<<20), (len(a)+len(b))>>10)
	}
}

// TestConfigSSHSymlinkAndReadOnly: a symlinked ~/.ssh/config (a dotfiles
// checkout) is written through to its target and stays a link; a read-only
// one is refused with a message saying so, and left alone; one that is a
// directory is refused, the path named once.
func TestConfigSSHSymlinkAndReadOnly(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	cfg := filepath.Join(e.home, ".ssh", "config")
	target := filepath.Join(e.home, "dotfiles", "ssh_config")
	os.MkdirAll(filepath.Dir(cfg), 0o700)
	os.MkdirAll(filepath.Dir(target), 0o700)
	if err := os.WriteFile(target, []byte("Host mine\n  User me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, cfg); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := e.run("config-ssh"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if fi, err := os.Lstat(cfg); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("~/.ssh/config is no longer a symlink: %v", err)
	}
	if b, _ := os.ReadFile(target); !strings.Contains(string(b), sshconfig.BeginMarker("demo-project")) || !strings.HasSuffix(string(b), "Host mine\n  User me\n") {
		t.Fatalf("target:\n%s", b)
	}

	os.Remove(cfg)
	if err := os.WriteFile(cfg, []byte("Host mine\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := e.run("config-ssh")
	if code == 0 || !strings.Contains(errOut, "read-only") {
		t.Fatalf("read-only config: exit %d, stderr %q", code, errOut)
	}
	if b, _ := os.ReadFile(cfg); string(b) != "Host mine\n" {
		t.Fatalf("read-only config changed: %q", b)
	}

	os.Remove(cfg)
	if err := os.Symlink(filepath.Dir(target), cfg); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = e.run("config-ssh")
	if code == 0 || !strings.Contains(errOut, "is a directory") || strings.Count(errOut, cfg) != 1 {
		t.Fatalf("config that is a directory: exit %d, stderr %q (want the path named once)", code, errOut)
	}
}

// TestConfigSSHTwoProjects: each project keeps its own managed block:
// a second project's run leaves the first's byte for byte, a rerun changes
// nothing, and --remove --project P takes out only P's. Every write
// replaces the file (a new inode: written beside it and renamed), never
// truncates it in place.
func TestConfigSSHTwoProjects(t *testing.T) {
	a := newParallelEnv(t, emulator.Config{Nodes: 2})
	b := newOwnEnv(t, emulator.Config{Nodes: 1, Project: "other-project"})
	cfg := filepath.Join(t.TempDir(), "config")
	mine := "Host bastion\n  User me\n"
	if err := os.WriteFile(cfg, []byte(mine), 0o600); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		t.Helper()
		got, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return string(got)
	}
	inode := func() uint64 {
		t.Helper()
		fi, err := os.Stat(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	run := func(e *testEnv, args ...string) string {
		t.Helper()
		ino := inode()
		_, stderr, code := e.run(append([]string{"config-ssh", "--ssh-config-file", cfg}, args...)...)
		if code != 0 {
			t.Fatalf("config-ssh %v: exit %d: %s", args, code, stderr)
		}
		if strings.HasPrefix(stderr, "Updated") || strings.HasPrefix(stderr, "Removed") {
			if inode() == ino {
				t.Errorf("config-ssh %v rewrote the file in place", args)
			}
		}
		return stderr
	}
	blockOf := func(config, project string) string {
		t.Helper()
		blk, err := sshconfig.Block([]byte(config), project)
		if err != nil || blk == nil {
			t.Fatalf("no block for %s (%v) in:\n%s", project, err, config)
		}
		return string(blk)
	}

	run(a)
	first := read()
	blockA := blockOf(first, "demo-project")
	run(b)
	both := read()
	if blockOf(both, "demo-project") != blockA || !strings.Contains(blockOf(both, "other-project"), "--project other-project") ||
		!strings.HasSuffix(both, "\n"+mine) {
		t.Fatalf("after the second project's run:\n%s", both)
	}
	if msg := run(a); !strings.Contains(msg, "up to date") || read() != both {
		t.Fatalf("rerun for the first project: %q, file changed: %v", msg, read() != both)
	}
	if msg := run(a, "--remove", "--project", "other-project"); !strings.HasPrefix(msg, "Removed the managed block for project other-project") || read() != first {
		t.Fatalf("--remove --project other-project: %q\n%s", msg, read())
	}
	if msg := run(a, "--remove", "--project", "other-project"); !strings.Contains(msg, "nothing to remove") || read() != first {
		t.Fatalf("second --remove: %q", msg)
	}
	run(a, "--remove")
	if got := read(); got != mine {
		t.Fatalf("after removing both:\n%q\nwant\n%q", got, mine)
	}
}

// TestProjectChecked: a project that is no project ID by gcloud's rule
// (core/properties.py), from --project or gcloud's core/project, is a
// usage error before any API call: '../../x' reached the API path, and a
// newline would reach config-ssh's ProxyCommand.
func TestProjectChecked(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	for _, p := range []string{"../../x", "a\nHost *", "My Project", "p;id"} {
		for _, args := range [][]string{{"--project", p, "config-ssh"}, {"--project", p, "keys", "list"}, {"keys", "list", "--project", p}} {
			_, errOut, code := e.run(args...)
			if code != exitUsage || !strings.Contains(errOut, "pass a project ID") {
				t.Errorf("gkessh %q: exit %d, stderr %q; want a usage error", args, code, errOut)
			}
		}
	}
	e.setenv("CLOUDSDK_CORE_PROJECT", "../../x")
	if _, errOut, code := e.run("keys", "list"); code != exitUsage || !strings.Contains(errOut, "project ID") {
		t.Errorf("CLOUDSDK_CORE_PROJECT=../../x: exit %d, stderr %q; want a usage error", code, errOut)
	}
	if n := e.srv.Stats().APICalls; n != 0 {
		t.Errorf("%d API calls", n)
	}
	if _, errOut, code := e.run("--project", "example.com:"+e.srv.ProjectName(), "keys", "list"); code == exitUsage {
		t.Errorf("a domain-scoped project ID refused: %s", errOut)
	}
}
