//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// TestConfigSSHHomeWithSpaces: with a space in HOME, the block config-ssh
// writes is one ssh accepts, with the key and known_hosts paths whole.
func TestConfigSSHHomeWithSpaces(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 1})
	e.home = filepath.Join(e.home, "Jane Doe")
	if err := os.Mkdir(e.home, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", e.home)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(e.home, ".cache"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(e.home, ".config"))
	for _, args := range [][]string{{"config-ssh", "--user", "nat"}, {"config-ssh", "--user", "nat", "--key-file", filepath.Join(e.home, "my keys", "id")}} {
		if _, errOut, code := e.run(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		key := filepath.Join(e.home, ".ssh", "google_compute_engine")
		if len(args) > 3 {
			key = args[4]
		}
		got := sshG(t, filepath.Join(e.home, ".ssh", "config"), e.srv.Nodes()[0])
		for _, want := range []string{
			"identityfile " + key,
			"userknownhostsfile " + filepath.Join(e.home, ".ssh", "google_compute_known_hosts"),
		} {
			if !strings.Contains(got, "\n"+want+"\n") {
				t.Errorf("%v: ssh -G lacks %q:\n%s", args, want, got)
			}
		}
		if !strings.Contains(got, "--key-file '"+key+"'") && len(args) > 3 {
			t.Errorf("%v: the ProxyCommand does not carry the key path whole:\n%s", args, got)
		}
	}
}
