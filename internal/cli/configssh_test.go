package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/sshconfig"
)

func TestConfigSSH(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 3})
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
	known, err := os.ReadFile(filepath.Join(e.home, ".ssh", sshconfig.KnownHostsName))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range e.srv.Nodes() {
		n := e.srv.Node(name)
		alias := sshconfig.HostAlias(n.ID)
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
	if _, errOut, code := e.run("config-ssh", "--user", "nat", "--filter", "^gke-cluster-default-pool-41ef50b9-"); code != 0 {
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
	e := newTestEnv(t, emulator.Config{Nodes: 2})
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
	known, err := os.ReadFile(filepath.Join(e.home, ".ssh", sshconfig.KnownHostsName))
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
	e := newTestEnv(t, emulator.Config{Nodes: 1})
	cfg := filepath.Join(e.home, ".ssh", "config")
	os.MkdirAll(filepath.Dir(cfg), 0o700)
	twice := sshconfig.Render(nil)
	broken := string(twice) + string(twice)
	if err := os.WriteFile(cfg, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"two managed blocks", []string{"config-ssh"}, exitError1},
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

func TestLineDiff(t *testing.T) {
	got := string(lineDiff([]byte("a\nb\nc\n"), []byte("a\nx\nc\n")))
	if want := " a\n-b\n+x\n c\n"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}
