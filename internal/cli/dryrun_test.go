//go:build unix

package cli

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// treeHash maps every file, directory and link under root to its mode and
// content (or link target), hashed.
func treeHash(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %x", sha256.Sum256(b))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			v += " -> " + target
		}
		out[path] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDryRunWritesNothing runs every --dry-run command on an empty HOME and
// on one gkessh has used (with the key's .pub gone, which loading the key
// would otherwise write back): nothing under HOME and nothing in metadata
// may change.
func TestDryRunWritesNothing(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 2})
	node := e.srv.Nodes()[0]
	// cp's both sides are outside HOME: checked at the end.
	files := t.TempDir()
	src, remote := filepath.Join(files, "src"), filepath.Join(files, "remote")
	if err := os.WriteFile(src, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	commands := [][]string{
		{"config-ssh", "--dry-run", "--user", "nat"},
		{"config-ssh", "--dry-run", "--pattern", "gke-*"},
		{"config-ssh", "--dry-run", "--remove"},
		{"keys", "ensure", "--dry-run"},
		{"keys", "ensure", "--dry-run", node},
		{"keys", "ensure", "--dry-run", "--scope", "instance", node},
		{"keys", "remove", "--dry-run"},
		{"keys", "prune", "--dry-run", "--all-expired"},
		{node, "--dry-run"},
		{"cp", "--dry-run", src, node + ":" + remote},
		{"scp", "--dry-run", "--all", src, ":" + remote},
		{"cp", "--dry-run", "--all", ":" + src, remote},
		{"cp", "--dry-run", node + ":" + src, remote},
		{"run", "--dry-run", "--all", "--", "id"},
		{"--dry-run", "run", node, "--", "id"},
		{"audit", "--dry-run", "--all"},
		{"--dry-run", "audit", node, "--format", "json"},
	}
	check := func(state string) {
		for _, args := range commands {
			before, writes, tunnels := treeHash(t, e.home), e.srv.Stats().MetadataWrites, e.srv.Stats().Tunnels
			out, errOut, code := e.run(args...)
			after := treeHash(t, e.home)
			if !maps.Equal(before, after) {
				var changed []string
				for p := range maps.Keys(after) {
					if before[p] != after[p] {
						changed = append(changed, p)
					}
				}
				for p := range maps.Keys(before) {
					if _, ok := after[p]; !ok {
						changed = append(changed, p+" (removed)")
					}
				}
				slices.Sort(changed)
				t.Errorf("%s HOME: %q (exit %d) changed %q\nstdout %s\nstderr %s", state, args, code, changed, out, errOut)
			}
			if got := e.srv.Stats().MetadataWrites; got != writes {
				t.Errorf("%s HOME: %q wrote metadata", state, args)
			}
			if got := e.srv.Stats().Tunnels; got != tunnels {
				t.Errorf("%s HOME: %q opened %d tunnels", state, args, got-tunnels)
			}
			// (keys remove has nothing to remove on an empty HOME.)
			// (audit exits 1 on what the API shows.)
			if code != 0 && slices.Contains([]string{"cp", "scp", "run"}, args[0]) || code > 1 && args[0] == "audit" {
				t.Errorf("%s HOME: %q: exit %d\nstdout %s\nstderr %s", state, args, code, out, errOut)
			}
		}
	}
	check("empty")
	for _, args := range [][]string{{"keys", "ensure"}, {"config-ssh", "--user", "nat"}, {"keys", "ensure", "--scope", "instance", node}} {
		if _, errOut, code := e.run(args...); code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, errOut)
		}
	}
	if err := os.Remove(filepath.Join(e.home, ".ssh", "google_compute_engine.pub")); err != nil {
		t.Fatal(err)
	}
	e.srv.Node(node).SetLabels(map[string]string{"changed": "yes"})
	e.srv.AddNode("gke-new-node", "us-west1-a") // so config-ssh has a change to show
	check("used")

	// With ADC credentials a token is fetched, and it must not be cached.
	sa, err := e.srv.AddServiceAccount(emulator.Account{Email: "dry@" + e.srv.ProjectName() + ".iam.gserviceaccount.com",
		Grant: emulator.Grant{Projects: []string{e.srv.ProjectName()}}}, e.url)
	if err != nil {
		t.Fatal(err)
	}
	adc := filepath.Join(t.TempDir(), "adc.json")
	if err := os.WriteFile(adc, sa, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GKESSH_ACCESS_TOKEN_FILE", "")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", adc)
	check("used, with ADC")
	if _, err := os.Stat(remote); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a dry cp made %s (%v)", remote, err)
	}
}
