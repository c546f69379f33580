//go:build unix

package e2e

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
)

// The emulator's nodes share this machine's file system: a path under the
// world's HOME is a remote path on every node, and what a node wrote can
// be read back here.

// TestCopy: gkessh cp, with no OpenSSH client, to and from one node and
// to and from every node of a cluster, with sha256 checks of every file;
// the nodes run OpenSSH's sshd and sftp server.
func TestCopy(t *testing.T) {
	w := startEmulator(t, "--sshd", "openssh", "--nodes", "3", "--propagation-delay", "200ms")
	user := loginUser(t)
	nodes := w.nodes()
	src := filepath.Join(w.home, "src")
	writeRandom(t, filepath.Join(src, "big"), 20<<20)
	writeRandom(t, filepath.Join(src, "dir", "a"), 1000)
	writeRandom(t, filepath.Join(src, "dir", "sub", "b"), 70000)
	remote := filepath.Join(w.home, "remote")
	os.Mkdir(remote, 0o755)

	// One node, gcloud compute scp's command line, both ways.
	n := nodes[0].Name
	w.run("gkessh", "scp", "--recurse", "--zone", nodes[0].Zone, "--tunnel-through-iap", filepath.Join(src, "big"), filepath.Join(src, "dir"), user+"@"+n+":"+remote)
	if a, b := sha256File(t, filepath.Join(src, "big")), sha256File(t, filepath.Join(remote, "big")); a != b {
		t.Fatalf("push: sha256 %s sent, %s arrived", a, b)
	}
	if a, b := sha256Tree(t, filepath.Join(src, "dir")), sha256Tree(t, filepath.Join(remote, "dir")); a != b {
		t.Fatalf("push -r: trees differ")
	}
	back := filepath.Join(w.home, "back")
	w.run("gkessh", "cp", "-r", "--user", user, n+":"+remote+"/big", n+":"+remote+"/dir", mkdir(t, back))
	if a, b := sha256File(t, filepath.Join(src, "big")), sha256File(t, filepath.Join(back, "big")); a != b {
		t.Fatalf("pull: sha256 %s sent, %s arrived", a, b)
	}
	if a, b := sha256Tree(t, filepath.Join(src, "dir")), sha256Tree(t, filepath.Join(back, "dir")); a != b {
		t.Fatalf("pull -r: trees differ")
	}

	// Every node: push, then pull each node's copy into LOCALDIR/NODE.
	w.control("POST", "/control/stats/reset", nil, nil)
	out := w.output("gkessh", "cp", "--user", user, "--cluster", "cluster", filepath.Join(src, "big"), ":"+remote+"/fleet")
	for _, nd := range nodes {
		if !strings.Contains(out, nd.Name+": ok, 20.0 MiB in 1 file, ") {
			t.Errorf("no result line for %s:\n%s", nd.Name, out)
		}
	}
	if a, b := sha256File(t, filepath.Join(src, "big")), sha256File(t, filepath.Join(remote, "fleet")); a != b {
		t.Fatalf("fleet push: sha256 %s sent, %s arrived", a, b)
	}
	pulled := filepath.Join(w.home, "pulled")
	w.run("gkessh", "cp", "-r", "--user", user, "--all", ":"+remote+"/fleet", ":"+remote+"/dir", pulled)
	for _, nd := range nodes {
		if a, b := sha256File(t, filepath.Join(src, "big")), sha256File(t, filepath.Join(pulled, nd.Name, "fleet")); a != b {
			t.Errorf("fleet pull from %s: sha256 %s sent, %s arrived", nd.Name, a, b)
		}
		if a, b := sha256Tree(t, filepath.Join(src, "dir")), sha256Tree(t, filepath.Join(pulled, nd.Name, "dir")); a != b {
			t.Errorf("fleet pull -r from %s: trees differ", nd.Name)
		}
	}
	if st := w.stats(); st.MetadataWrites != 0 {
		t.Errorf("warm fleet copies wrote metadata %d times", st.MetadataWrites)
	}
	noTemps(t, w.home, ".")
}

func mkdir(t *testing.T, p string) string {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// noTemps fails on any temporary file of gkessh cp under dir whose name
// starts with prefix.
func noTemps(t *testing.T, dir, prefix string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), prefix) && strings.Contains(d.Name(), ".gkessh-") && strings.HasSuffix(d.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

// TestCopyCut: the node's sshd goes away in the middle of a copy. The copy
// fails, and the file at the destination is the old one, whole: never the
// part that arrived. A pull's partial file is removed; a push's stays
// under its hidden temporary name on the node, which the cut client could
// not reach to remove.
func TestCopyCut(t *testing.T) {
	w := startEmulator(t, "--nodes", "1", "--propagation-delay", "100ms")
	user := loginUser(t)
	n := w.nodes()[0].Name
	dir := mkdir(t, filepath.Join(w.home, "cut"))
	big := filepath.Join(dir, "big")
	writeRandom(t, big, 128<<20)
	for _, push := range []bool{true, false} {
		name := map[bool]string{true: "push", false: "pull"}[push]
		t.Run(name, func(t *testing.T) {
			dst := filepath.Join(dir, name+"-dst")
			os.WriteFile(dst, []byte("old"), 0o644)
			args := []string{"cp", "--user", user, big, n + ":" + dst}
			if !push {
				args = []string{"cp", "--user", user, n + ":" + big, dst}
			}
			cmd := w.command("gkessh", args...)
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Cut once a few MiB have arrived under the temporary name.
			waitTemp(t, dir, name+"-dst", 4<<20)
			w.control("POST", "/control/nodes/"+n, map[string]string{"sshd": "stopped"}, nil)
			err := cmd.Wait()
			w.control("POST", "/control/nodes/"+n, map[string]string{"sshd": "running"}, nil)
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the cut copy did not fail (%v):\n%s", err, out.String())
			}
			if b, err := os.ReadFile(dst); err != nil || string(b) != "old" {
				t.Errorf("destination after the cut: %d bytes (%v), want the old 3", len(b), err)
			}
			if !push {
				noTemps(t, dir, "."+name+"-dst.")
			}
			t.Logf("exit %d:\n%s", exit.ExitCode(), out.String())
		})
	}
}

// waitTemp waits until a temporary file for name in dir holds at least n
// bytes.
func waitTemp(t *testing.T, dir, name string, n int64) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "."+name+".gkessh-") {
				if fi, err := e.Info(); err == nil && fi.Size() >= n {
					return
				}
			}
		}
	}
	t.Fatalf("no temporary file for %s reached %d bytes", name, n)
}

// TestCopyHostileNames: a node directory holds names that are terminal
// controls and other systems' separators. A pull of it, to one node and to
// the fleet, writes nothing outside the destination, copies the plain
// names, refuses the rest by name, escaped, and exits 1.
func TestCopyHostileNames(t *testing.T) {
	w := startEmulator(t, "--nodes", "2", "--propagation-delay", "100ms")
	user := loginUser(t)
	n := w.nodes()[0].Name
	remote := mkdir(t, filepath.Join(w.home, "remote", "logs"))
	writeRandom(t, filepath.Join(remote, "plain.log"), 100)
	hostile := []string{"esc\x1b]0;pwned\x07", "nl\nname", "\u202egol.exe", `back\slash`, "bad\xffutf8"}
	for _, h := range hostile {
		writeRandom(t, filepath.Join(remote, h), 10)
	}
	os.Symlink("/etc", filepath.Join(remote, "etc-link"))
	os.Symlink("/etc/hostname", filepath.Join(remote, "hostname-link"))
	for _, fleet := range []bool{false, true} {
		t.Run(map[bool]string{false: "one", true: "fleet"}[fleet], func(t *testing.T) {
			base := mkdir(t, filepath.Join(w.home, fmt.Sprintf("out-%v", fleet)))
			dest := mkdir(t, filepath.Join(base, "dest"))
			args := []string{"cp", "-r", "--user", user, n + ":" + remote, dest}
			if fleet {
				args = []string{"cp", "-r", "--user", user, "--all", ":" + remote, dest}
			}
			cmd := w.command("gkessh", args...)
			b, err := cmd.CombinedOutput()
			out := string(b)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit %v, want 1:\n%s", err, out)
			}
			if strings.ContainsAny(out, "\x1b\x07\u202e") {
				t.Errorf("output carries the names raw: %q", out)
			}
			for _, want := range []string{`"esc\x1b]0;pwned\a"`, `"nl\nname"`, `"\u202egol.exe"`, `"back\\slash"`, `"bad\xffutf8"`} {
				if !strings.Contains(out, want) {
					t.Errorf("output does not name %s:\n%s", want, out)
				}
			}
			roots := []string{filepath.Join(dest, "logs")}
			if fleet {
				roots = nil
				for _, nd := range w.nodes() {
					roots = append(roots, filepath.Join(dest, nd.Name, "logs"))
				}
			}
			var got []string
			filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					got = append(got, p)
				}
				return nil
			})
			if len(got) != 2*len(roots) {
				t.Errorf("files written: %q, want plain.log and hostname-link under %v", got, roots)
			}
			for _, r := range roots {
				if !fileExists(filepath.Join(r, "plain.log")) || !fileExists(filepath.Join(r, "hostname-link")) {
					t.Errorf("%s lacks the plain files", r)
				}
			}
		})
	}
}

// TestCopyResume: the relay drops every websocket after 8 MiB, without a
// close frame; the IAP tunnel's resume carries 64 MiB each way through
// gkessh cp intact.
func TestCopyResume(t *testing.T) {
	w := startEmulator(t, "--nodes", "1", "--propagation-delay", "100ms")
	user := loginUser(t)
	n := w.nodes()[0].Name
	src := filepath.Join(w.home, "payload")
	writeRandom(t, src, 64<<20)
	w.run("gkessh", "cp", "--user", user, src, n+":"+src+".warm") // key, host keys, zone cache
	w.control("POST", "/control/stats/reset", nil, nil)
	w.control("POST", "/control/faults", emulator.Faults{DropAfterBytes: 8 << 20}, nil)
	w.run("gkessh", "cp", "--user", user, src, n+":"+src+".up")
	w.run("gkessh", "cp", "--user", user, n+":"+src+".up", src+".down")
	sum := sha256File(t, src)
	for _, p := range []string{src + ".up", src + ".down"} {
		if got := sha256File(t, p); got != sum {
			t.Errorf("%s: sha256 %s, sent %s", p, got, sum)
		}
	}
	if st := w.stats(); st.Tunnels < 2*7+2 {
		t.Errorf("%d websockets, want the relay to have cut at least 7 times each way", st.Tunnels)
	}
}
