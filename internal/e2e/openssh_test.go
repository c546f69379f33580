//go:build unix

package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// loginUser is who the openssh-mode nodes let in: the OS user running them.
func loginUser(t testing.TB) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// TestOpenSSHThroughConfigBlock drives plain ssh, scp (64 MiB) and rsync through the
// block `gkessh config-ssh` writes, from a HOME with no key yet: the first
// ssh makes `gkessh proxy` create and upsert the key and wait for it.
func TestOpenSSHThroughConfigBlock(t *testing.T) {
	need(t, "ssh", "scp", "rsync")
	w := startEmulator(t, "--sshd", "openssh", "--nodes", "3", "--propagation-delay", "300ms")
	w.run("gkessh", "config-ssh", "--user", loginUser(t))
	cfg := filepath.Join(w.home, ".ssh", "config")
	nodes := w.nodes()
	for _, n := range nodes {
		if out := w.output("ssh", "-F", cfg, n.Name, "echo", "hello-from", n.Name); strings.TrimSpace(out) != "hello-from "+n.Name {
			t.Fatalf("ssh %s: %q", n.Name, out)
		}
	}

	// The nodes share this machine's file system: use paths under HOME.
	src := filepath.Join(w.home, "payload")
	writeRandom(t, src, 64<<20)
	node := nodes[0].Name
	w.run("scp", "-q", "-F", cfg, src, node+":"+src+".up")
	w.run("scp", "-q", "-F", cfg, node+":"+src+".up", src+".down")
	if a, b := sha256File(t, src), sha256File(t, src+".down"); a != b {
		t.Fatalf("scp round trip changed the file: %s vs %s", a, b)
	}

	tree := filepath.Join(w.home, "tree")
	for i, size := range []int{0, 1, 1 << 10, 300 << 10} {
		writeRandom(t, filepath.Join(tree, "d", strings.Repeat("x", i+1)), size)
	}
	w.run("rsync", "-a", "-e", "ssh -F "+cfg, tree+"/", nodes[1].Name+":"+tree+".copy/")
	if a, b := sha256Tree(t, tree), sha256Tree(t, tree+".copy"); a != b {
		t.Fatalf("rsync copy differs: %s vs %s", a, b)
	}
}

func writeRandom(t testing.TB, path string, size int) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha256File(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// sha256Tree hashes every file's relative path and contents.
func sha256Tree(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		h.Write([]byte(rel + "\x00" + sha256File(t, p) + "\n"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
