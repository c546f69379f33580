//go:build unix

package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// The emulator's nodes share this machine's file system, so a test's
// temporary directory is a remote path too.

func randomFile(t *testing.T, p string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	return b
}

func sameFile(t *testing.T, p string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s: %d bytes (%v), want the %d copied", p, len(got), err, len(want))
	}
}

// TestCpOneNode: gcloud compute scp's command lines, both ways, files and
// trees; a missing remote path fails naming the node and path (exit 1);
// the key is written once and announced once.
func TestCpOneNode(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	dir := t.TempDir()
	data := randomFile(t, filepath.Join(dir, "src", "f"), 3<<20+5)
	randomFile(t, filepath.Join(dir, "src", "sub", "g"), 10)
	remote := filepath.Join(dir, "remote")
	os.Mkdir(remote, 0o755)

	_, stderr, code := e.run("scp", filepath.Join(dir, "src", "f"), "tester@"+node+":"+remote+"/f", "--zone", "us-west1-a", "--tunnel-through-iap")
	if code != 0 || !strings.Contains(stderr, "Added ") {
		t.Fatalf("push: exit %d, stderr:\n%s", code, stderr)
	}
	sameFile(t, filepath.Join(remote, "f"), data)
	stdout, stderr, code := e.run("cp", "tester@"+node+":"+remote+"/f", filepath.Join(dir, "back"))
	if code != 0 || stdout != "" || strings.Contains(stderr, "key") {
		t.Fatalf("pull: exit %d, a warm copy says nothing; stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	sameFile(t, filepath.Join(dir, "back"), data)
	if _, stderr, code := e.run("cp", "--recurse", "--user", "tester", filepath.Join(dir, "src"), node+":"+remote); code != 0 {
		t.Fatalf("push -r: exit %d, stderr:\n%s", code, stderr)
	}
	sameFile(t, filepath.Join(remote, "src", "f"), data)
	if _, stderr, code := e.run("cp", "-r", "-p", "--user=tester", node+":"+remote+"/src", filepath.Join(dir, "tree")); code != 0 {
		t.Fatalf("pull -r: exit %d, stderr:\n%s", code, stderr)
	}
	sameFile(t, filepath.Join(dir, "tree", "f"), data)
	if fi, err := os.Stat(filepath.Join(dir, "tree", "f")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("-p: mode %v (%v), want 0640", fi.Mode().Perm(), err)
	}

	_, stderr, code = e.run("cp", "--user", "tester", node+":"+remote+"/missing", dir)
	if code != 1 || !strings.Contains(stderr, node+":"+remote+"/missing: no such file or directory") {
		t.Errorf("missing: exit %d, stderr:\n%s", code, stderr)
	}
	_, stderr, code = e.run("cp", "--user", "tester", node+":"+remote+"/src", dir)
	if code != 1 || !strings.Contains(stderr, "is a directory") {
		t.Errorf("directory without -r: exit %d, stderr:\n%s", code, stderr)
	}
	if w := e.srv.Stats().MetadataWrites; w != 1 {
		t.Errorf("%d metadata writes, want 1", w)
	}
}

// cpJSON runs `gkessh cp --format json ARGS` and returns the objects by
// node, stderr and the exit status; every line must be one object with
// the documented fields.
func (e *testEnv) cpJSON(args ...string) (map[string]jsonCopy, string, int) {
	e.t.Helper()
	out, stderr, code := e.run(append([]string{"cp", "--format", "json"}, args...)...)
	got := map[string]jsonCopy{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var r jsonCopy
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			e.t.Fatalf("stdout line %q: %v", line, err)
		}
		got[r.Node] = r
	}
	return got, stderr, code
}

// TestCpFleet: a push to every selected node and a pull from each into
// LOCALDIR/NODE, with one key write, a result per node, a summary and
// run's exit statuses: a node that is not RUNNING is skipped, a missing
// file fails its nodes (1).
func TestCpFleet(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 5})
	nodes := e.srv.Nodes()
	stopped := nodes[4]
	if err := e.srv.Node(stopped).SetStatus("TERMINATED"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := randomFile(t, filepath.Join(dir, "f"), 1<<20)
	remote := filepath.Join(dir, "remote")
	os.Mkdir(remote, 0o755)

	stdout, stderr, code := e.run("cp", filepath.Join(dir, "f"), ":"+remote+"/", "--cluster", "cluster", "-P", "2")
	if code != 0 || !strings.HasSuffix(stderr, "5 nodes: 4 ok, 1 skipped ("+stopped+": TERMINATED)\n") {
		t.Fatalf("push: exit %d, stderr:\n%s", code, stderr)
	}
	for _, n := range nodes[:4] {
		if !strings.Contains(stdout, n+": ok, 1.0 MiB in 1 file, ") {
			t.Errorf("no result line for %s in:\n%s", n, stdout)
		}
	}
	sameFile(t, filepath.Join(remote, "f"), data)
	if w := e.srv.Stats().MetadataWrites; w != 1 {
		t.Errorf("%d metadata writes, want 1", w)
	}

	got, stderr, code := e.cpJSON(":"+remote+"/f", filepath.Join(dir, "pulled"), "--all")
	if code != 0 || len(got) != 4 {
		t.Fatalf("pull: exit %d, %d results, stderr:\n%s", code, len(got), stderr)
	}
	for _, n := range nodes[:4] {
		if r := got[n]; r.Status != "ok" || r.Files != 1 || r.Bytes != 1<<20 || r.Error != nil {
			t.Errorf("%s: %+v", n, r)
		}
		sameFile(t, filepath.Join(dir, "pulled", n, "f"), data)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "pulled")); len(ents) != 4 {
		t.Errorf("pulled into %d directories, want 4", len(ents))
	}

	got, stderr, code = e.cpJSON(":"+remote+"/missing", filepath.Join(dir, "none"), "--all")
	if code != 1 || len(got) != 4 {
		t.Fatalf("missing: exit %d, %d results, stderr:\n%s", code, len(got), stderr)
	}
	for n, r := range got {
		if r.Status != "failed" || r.Error == nil || !strings.Contains(*r.Error, n+":"+remote+"/missing: no such file or directory") {
			t.Errorf("%s: %+v", n, r)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "none")); err == nil {
		if ents, _ := os.ReadDir(filepath.Join(dir, "none")); len(ents) != 0 {
			t.Errorf("a failed pull left %d directories", len(ents))
		}
	}
	if _, stderr, code := e.run("cp", filepath.Join(dir, "f"), stopped+":"+remote); code != 255 {
		t.Errorf("to a stopped node: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestCpUsage: wrong command lines exit 2 before anything is done; gcloud
// flags that change nothing are noted.
func TestCpUsage(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	for _, args := range [][]string{
		{"cp", "a"},
		{"cp", "a", "b"},
		{"cp", "a", ":/tmp"},
		{"cp", "a", node + ":/tmp", "--all"},
		{"cp", node + ":a", node + ":b"},
		{"cp", "--format", "yaml", "a", node + ":/tmp"},
		{"cp", "a", "Bad;Name:/tmp"},
		{"cp", "--user", "x", "y@" + node + ":/tmp", "a"},
		{"cp", "-P", "0", "a", ":/x", "--all"},
	} {
		if _, stderr, code := e.run(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2; stderr:\n%s", args, code, stderr)
		}
	}
	f := filepath.Join(t.TempDir(), "f")
	randomFile(t, f, 10)
	_, stderr, code := e.run("scp", "--compress", "--scp-flag=-l", "--scp-flag=100", f, node+":"+f+".up")
	if code != 0 || !strings.Contains(stderr, "gkessh: ignoring --compress") || !strings.Contains(stderr, "ignoring --scp-flag -l 100") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

// TestCpProgress: a terminal on stdout shows the progress line, redrawn
// in place and ending at 100%; a pipe shows none.
func TestCpProgress(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	dir := t.TempDir()
	randomFile(t, filepath.Join(dir, "f"), 8<<20)
	var errb bytes.Buffer
	var code int
	s := onTerminal(t, func(tty *os.File) {
		code = Main(context.Background(), []string{"gkessh", "cp", filepath.Join(dir, "f"), node + ":" + dir + "/up"}, Stdio{In: strings.NewReader(""), Out: tty, Err: &errb})
	})
	if code != 0 || !strings.Contains(s, node+" 100%") || !strings.Contains(s, "8.0 MiB") {
		t.Errorf("exit %d, terminal showed %q, stderr %q", code, s, errb.String())
	}
	stdout, _, _ := e.run("cp", filepath.Join(dir, "f"), node+":"+dir+"/up2")
	if stdout != "" {
		t.Errorf("progress on a pipe: %q", stdout)
	}
}

// TestCpInternalIP: --internal-ip, as gcloud compute scp has it, copies
// over the node's internal IP (made loopback here, as a VPN or the VPC
// makes it reachable) with no IAP tunnel, to one node and to a selection;
// with --tunnel-through-iap it is a usage error.
func TestCpInternalIP(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	n := e.node(0)
	host, port, err := net.SplitHostPort(n.SSHAddr())
	if err != nil {
		t.Fatal(err)
	}
	n.SetNetworkIP(host)
	dir := t.TempDir()
	data := randomFile(t, filepath.Join(dir, "f"), 100<<10)
	remote := filepath.Join(dir, "remote")
	os.Mkdir(remote, 0o755)
	for _, args := range [][]string{
		{"scp", "--internal-ip", "--port", port, filepath.Join(dir, "f"), n.Name + ":" + remote + "/one"},
		{"cp", "--internal-ip", "--port", port, "--all", filepath.Join(dir, "f"), ":" + remote + "/all"},
	} {
		if _, stderr, code := e.run(args...); code != 0 {
			t.Fatalf("%q: exit %d, stderr:\n%s", args, code, stderr)
		}
	}
	sameFile(t, filepath.Join(remote, "one"), data)
	sameFile(t, filepath.Join(remote, "all"), data)
	if tunnels := e.srv.Stats().Tunnels; tunnels != 0 {
		t.Errorf("%d IAP tunnels opened with --internal-ip", tunnels)
	}
	_, stderr, code := e.run("scp", "--internal-ip", "--tunnel-through-iap", filepath.Join(dir, "f"), n.Name+":"+remote)
	if code != 2 || !strings.Contains(stderr, "--internal-ip and --tunnel-through-iap: pick one") {
		t.Errorf("--internal-ip --tunnel-through-iap: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestCpDryRun: --dry-run says once what it would do with the key and
// then each node's copy, where to and by which route, and each node it
// would leave out; a missing local source is an error, as in the copy.
// TestDryRunWritesNothing checks that it changes nothing.
func TestCpDryRun(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 3})
	nodes := e.srv.Nodes()
	stopped := nodes[2]
	if err := e.srv.Node(stopped).SetStatus("TERMINATED"); err != nil {
		t.Fatal(err)
	}
	e.srv.Node(nodes[1]).SetNetworkIP("10.0.0.7")
	dir := t.TempDir()
	src := filepath.Join(dir, "f")
	randomFile(t, src, 10)

	stdout, stderr, code := e.run("cp", "--dry-run", "--all", src, ":/tmp/x")
	if code != 0 || strings.Count(stdout, "would create key pair ") != 1 {
		t.Errorf("push: exit %d, want the key's line once; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		nodes[0] + ": would copy " + src + " to " + nodes[0] + ":/tmp/x through an IAP tunnel to port 22\n",
		nodes[1] + ": would copy " + src + " to " + nodes[1] + ":/tmp/x through an IAP tunnel to port 22\n",
		stopped + ": would not copy: TERMINATED, not RUNNING\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("push: no %q in:\n%s", want, stdout)
		}
	}

	if _, stderr, code := e.run("keys", "ensure"); code != 0 {
		t.Fatalf("keys ensure: exit %d: %s", code, stderr)
	}
	stdout, _, code = e.run("cp", "--dry-run", "--internal-ip", "--all", ":/var/log/a", ":/var/log/b", dir)
	if code != 0 || strings.Count(stdout, "'s key SHA256:") != 1 || !strings.Contains(stdout, " is already in project metadata ssh-keys") {
		t.Errorf("pull: exit %d, want the key in metadata said once; stdout:\n%s", code, stdout)
	}
	want := nodes[1] + ": would copy " + nodes[1] + ":/var/log/a " + nodes[1] + ":/var/log/b into " + filepath.Join(dir, nodes[1]) + "/ directly to 10.0.0.7:22\n"
	if !strings.Contains(stdout, want) {
		t.Errorf("pull: no %q in:\n%s", want, stdout)
	}

	_, stderr, code = e.run("cp", "--dry-run", filepath.Join(dir, "missing"), nodes[0]+":")
	if code != 255 || !strings.Contains(stderr, "missing: no such file or directory") {
		t.Errorf("missing source: exit %d, stderr:\n%s", code, stderr)
	}
}
