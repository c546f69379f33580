//go:build unix

package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/pty"
	"github.com/gkessh/gkessh/internal/testio"
	"github.com/gkessh/gkessh/knownhosts"
)

// runJSON runs `gkessh run --format json ARGS` with stdin and returns the
// objects by node, stderr and the exit status. Every line of stdout must be
// one object with exactly the documented fields.
func (e *testEnv) runJSON(stdin []byte, args ...string) (map[string]jsonResult, string, int) {
	e.t.Helper()
	out, stderr, code := e.runIn(stdin, append([]string{"run", "--format", "json"}, args...)...)
	got := map[string]jsonResult{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			e.t.Fatalf("stdout line %q is not a JSON object: %v", line, err)
		}
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"duration_ms", "error", "exit", "node", "status", "stderr", "stdout", "zone"}; !slices.Equal(keys, want) {
			e.t.Fatalf("object has fields %v, want %v", keys, want)
		}
		var r jsonResult
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			e.t.Fatal(err)
		}
		if _, dup := got[r.Node]; dup {
			e.t.Fatalf("node %s reported twice", r.Node)
		}
		got[r.Node] = r
	}
	return got, stderr, code
}

// okNodes lists the nodes that ran and exited 0, sorted.
func okNodes(rs map[string]jsonResult) []string {
	var names []string
	for n, r := range rs {
		if r.Status == "ok" && r.Exit != nil && *r.Exit == 0 && r.Error == nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// TestRunSelection: names, --all, --filter, --cluster, --pool and --zone
// pick exactly the nodes they say; a TERMINATED node that a set selector
// matches is listed as skipped and does not fail the run.
func TestRunSelection(t *testing.T) {
	// 24 nodes: the default pool in three zones, pool-1 in three zones.
	e := newParallelEnv(t, emulator.Config{Nodes: 24})
	all := e.srv.Nodes()
	var pool1, defaultPool, zoneC []string
	for _, name := range all {
		n := e.srv.Node(name)
		if strings.Contains(name, "-pool-1-") {
			pool1 = append(pool1, name)
		} else {
			defaultPool = append(defaultPool, name)
		}
		if n.Zone == "us-west1-c" {
			zoneC = append(zoneC, name)
		}
	}
	if len(pool1) != 3 || len(zoneC) != 2 {
		t.Fatalf("want 3 pool-1 nodes and 2 in us-west1-c, got %v and %v", pool1, zoneC)
	}
	stopped := defaultPool[0]
	if err := e.srv.Node(stopped).SetStatus("TERMINATED"); err != nil {
		t.Fatal(err)
	}
	without := func(names []string, drop string) []string {
		return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == drop })
	}
	cases := []struct {
		name    string
		args    []string
		want    []string
		skipped bool // the stopped node is listed as skipped
	}{
		{"names", []string{all[3], all[1], "--", "true"}, []string{all[1], all[3]}, false},
		{"all", []string{"--all", "--", "true"}, without(all, stopped), true},
		{"all without --", []string{"--all", "true"}, without(all, stopped), true},
		{"filter", []string{"--filter", "labels.goog-k8s-node-pool-name=pool-1", "--", "true"}, pool1, false},
		{"filter OR", []string{"--filter", `labels.goog-k8s-node-pool-name = pool-1 OR name = "` + all[1] + `"`, "--", "true"}, slices.Sorted(slices.Values(append(slices.Clone(pool1), all[1]))), false},
		{"cluster", []string{"--cluster", "cluster", "--", "true"}, without(all, stopped), true},
		{"cluster and pool", []string{"--cluster", "cluster", "--pool", "default-pool", "--", "true"}, without(defaultPool, stopped), true},
		{"pool and zone", []string{"--pool", "pool-1", "--zone", "us-west1-c", "--", "true"}, []string{pool1[2]}, false},
	}
	slices.Sort(pool1)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, stderr, code := e.runJSON(nil, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr)
			}
			if ok := okNodes(got); !slices.Equal(ok, tc.want) {
				t.Errorf("ran on %v\nwant %v", ok, tc.want)
			}
			r, listed := got[stopped]
			if listed != tc.skipped || (listed && (r.Status != "skipped" || r.Exit != nil || r.Error == nil || !strings.Contains(*r.Error, "TERMINATED"))) {
				t.Errorf("stopped node: listed %v (%+v), want listed %v as skipped", listed, r, tc.skipped)
			}
			if len(got) != len(tc.want)+map[bool]int{true: 1}[tc.skipped] {
				t.Errorf("%d objects for %d nodes", len(got), len(tc.want))
			}
		})
	}
}

// TestRunUnreachable: a TERMINATED node and one whose firewall is closed
// are each reported with their reason, the other nodes still run, and the
// exit status is 255; a command that fails everywhere exits 1.
func TestRunUnreachable(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 4})
	nodes := e.srv.Nodes()
	stopped, walled := nodes[1], nodes[2]
	if err := e.srv.Node(stopped).SetStatus("TERMINATED"); err != nil {
		t.Fatal(err)
	}
	e.srv.Node(walled).SetFirewall(false)

	stdout, stderr, code := e.run(append([]string{"run"}, append(nodes, "--", "echo", "hi")...)...)
	if code != 255 {
		t.Fatalf("exit %d, want 255; stderr:\n%s", code, stderr)
	}
	for _, n := range []string{nodes[0], nodes[3]} {
		if !strings.Contains(stdout, n+": hi\n") {
			t.Errorf("no output from %s in:\n%s", n, stdout)
		}
	}
	summary := "4 nodes: 2 ok, 2 unreachable (" + stopped + ": TERMINATED, not RUNNING; " +
		walled + ": IAP cannot reach port 22: firewall closed for 35.235.240.0/20, VM stopped or sshd down)\n"
	if !strings.HasSuffix(stderr, summary) {
		t.Errorf("stderr does not end with\n%s\ngot:\n%s", summary, stderr)
	}

	// JSON names the failure of each.
	got, _, code := e.runJSON(nil, append(nodes, "--", "true")...)
	if code != 255 || got[walled].Status != "unreachable" || got[walled].Error == nil || !strings.Contains(*got[walled].Error, "4003") ||
		got[stopped].Status != "unreachable" || got[walled].Exit != nil {
		t.Errorf("exit %d, results %+v", code, got)
	}

	// With --all the stopped node is skipped: only the firewall fails.
	_, stderr, code = e.run("run", "--all", "--", "true")
	if code != 255 || !strings.Contains(stderr, "1 skipped ("+stopped+": TERMINATED)") || !strings.Contains(stderr, "1 unreachable ("+walled+": ") {
		t.Errorf("--all: exit %d, stderr:\n%s", code, stderr)
	}

	e.srv.Node(walled).SetFirewall(true)
	_, stderr, code = e.run("run", "--all", "--", "sh", "-c", "exit 3")
	if code != 1 || !strings.HasSuffix(stderr, "4 nodes: 0 ok, 3 exited 3 ("+nodes[0]+"; "+walled+"; "+nodes[3]+"), 1 skipped ("+stopped+": TERMINATED)\n") {
		t.Errorf("failing command: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestRunStdinBroadcast: every node gets all of stdin, the three that start
// after the first three finished included (from the spool).
func TestRunStdinBroadcast(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 6})
	data := make([]byte, 300<<10)
	rand.Read(data)
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	got, stderr, code := e.runJSON(data, "--all", "-P", "3", "--", "sha256sum")
	if code != 0 || len(got) != 6 {
		t.Fatalf("exit %d, %d results, stderr:\n%s", code, len(got), stderr)
	}
	for n, r := range got {
		if !strings.HasPrefix(r.Stdout, want+" ") {
			t.Errorf("%s: sha256 %q, want %s", n, r.Stdout, want)
		}
	}
	// --no-stdin: the command reads nothing.
	got, stderr, code = e.runJSON(data, "--all", "--no-stdin", "--", "wc", "-c")
	if code != 0 || len(got) != 6 {
		t.Fatalf("--no-stdin: exit %d, %d results, stderr:\n%s", code, len(got), stderr)
	}
	for n, r := range got {
		if strings.TrimSpace(r.Stdout) != "0" {
			t.Errorf("--no-stdin: %s read %q", n, r.Stdout)
		}
	}
}

// TestRunStdinStreams: stdin reaches the nodes as it arrives: with stdin
// an open pipe that has sent one line, every node reads the line and the
// run ends, without waiting for stdin's end (it used to read all of stdin
// before starting anything).
func TestRunStdinStreams(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 3})
	cmd := exec.Command(gkesshBinary(t), "run", "--all", "--", "head", "-n", "1")
	cmd.Env = e.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close() // stays open until the run has ended
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdin, "streamed\n"); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("run: %v, stderr:\n%s", err, errb.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("run still waiting for stdin to end after 2 minutes; stderr:\n%s", errb.String())
	}
	if n := strings.Count(out.String(), ": streamed\n"); n != 3 {
		t.Errorf("%d nodes got the line, want 3:\n%s", n, out.String())
	}
}

// TestRunOneKeyWrite: from a keyless HOME, 50 nodes cost exactly one
// metadata write, and every node's published host keys are pinned. A warm
// run writes nothing and reads no node's published host keys: the recorded
// ones are what its nodes present.
func TestRunOneKeyWrite(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 50, PropagationDelay: 200 * time.Millisecond})
	_, stderr, code := e.run("run", "--all", "-P", "16", "--", "true")
	if code != 0 || !strings.HasSuffix(stderr, "50 nodes: 50 ok\n") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if w := e.srv.Stats().MetadataWrites; w != 1 {
		t.Errorf("%d metadata writes, want 1", w)
	}
	for _, name := range e.srv.Nodes() {
		assertPinned(t, e, e.srv.Node(name))
	}
	// A warm run writes nothing, and says once which key it relies on.
	e.srv.ResetStats()
	e.srv.ResetRequests()
	_, stderr, code = e.run("run", "--all", "--", "true")
	if code != 0 || e.srv.Stats().MetadataWrites != 0 {
		t.Errorf("warm run: exit %d, %d writes, stderr:\n%s", code, e.srv.Stats().MetadataWrites, stderr)
	}
	reads := 0
	for _, r := range e.srv.Requests() {
		if strings.HasSuffix(r.Path, "/getGuestAttributes") {
			reads++
		}
	}
	if reads != 0 {
		t.Errorf("warm run: %d reads of guest attributes, want none", reads)
	}
	if n := strings.Count(stderr, "already in project metadata"); n != 1 {
		t.Errorf("warm run: the key's notice printed %d times, want once; stderr:\n%s", n, stderr)
	}
}

// TestRunBlockedProjectKeys: a node that blocks project keys gets its own
// line (one write for it, one for the project) and runs.
func TestRunBlockedProjectKeys(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 3, PropagationDelay: 100 * time.Millisecond})
	blocked := e.srv.Nodes()[1]
	if err := e.srv.SetInstanceMetadata(blocked, map[string]*string{"block-project-ssh-keys": ptrTo("true")}); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := e.run("run", "--all", "--", "true")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if w := e.srv.Stats().MetadataWrites; w != 2 {
		t.Errorf("%d metadata writes, want 2 (project and the blocking node)", w)
	}
}

// assertPinned checks that n's published host keys are recorded under its
// alias in the test HOME's known_hosts.
func assertPinned(t *testing.T, e *testEnv, n *emulator.Node) {
	t.Helper()
	rec, err := knownhosts.KnownHosts{Path: e.knownHosts()}.Lookup(knownhosts.HostAlias(n.ID))
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Keys) != len(n.HostKeys()) {
		t.Errorf("%s: %d host keys pinned, want its %d published", n.Name, len(rec.Keys), len(n.HostKeys()))
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestRunOutputLines: lines are prefixed with the node name padded to the
// longest, stderr lines go to stderr, a last line without a newline is
// kept, and --group prints each node as one block.
func TestRunOutputLines(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 2})
	if _, err := e.srv.AddNode("n1", "us-west1-a"); err != nil {
		t.Fatal(err)
	}
	long := e.srv.Nodes()[0]
	stdout, stderr, code := e.run("run", long, "n1", "--", "printf 'a\\nb' ; echo oops >&2")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	pad := strings.Repeat(" ", len(long)-len("n1"))
	for _, want := range []string{long + ": a\n", long + ": b\n", "n1:" + pad + " a\n", "n1:" + pad + " b\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "n1:"+pad+" oops\n") || strings.Contains(stdout, "oops") {
		t.Errorf("stderr line misplaced: stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	stdout, _, _ = e.run("run", "--group", long, "n1", "--", "printf 'a\\nb'")
	for _, n := range []string{long, "n1"} {
		if !strings.Contains(stdout, "── "+n+": ok (") || !strings.Contains(stdout, ")\na\nb\n") {
			t.Errorf("--group output lacks %s's block:\n%s", n, stdout)
		}
	}
}

// TestRunUsage: selection mistakes are usage errors (exit 2), and a
// USER@NODE says where the user goes.
func TestRunUsage(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"run", "--", "true"}, ""},
		{[]string{"run", "node"}, ""},
		{[]string{"run", "--all"}, ""},
		{[]string{"run", "node", "--all", "--", "true"}, ""},
		{[]string{"run", "-P", "0", "--all", "--", "true"}, ""},
		{[]string{"run", "--output", "yaml", "--all", "--", "true"}, ""},
		{[]string{"run", "Bad;name", "--", "true"}, ""},
		{[]string{"run", "--all", "--zone", "us-west1-a/../x", "--", "true"}, ""},
		{[]string{"run", "--pool", "Default Pool", "--", "true"}, ""},
		{[]string{"run", "--cluster", `a" OR name:*`, "--", "true"}, ""},
		{[]string{"run", "root@node", "--", "true"}, "name the node alone and the user with --user root"},
	} {
		if _, stderr, code := e.run(tc.args...); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, want 2 and %q; stderr:\n%s", tc.args, code, tc.want, stderr)
		}
	}
}

// TestRunInterrupt: cancelling a run (Ctrl-C) mid-way closes every session,
// reports the node that had finished and the ones cut short, exits 130,
// and leaves no goroutine of gkessh's, no emulator tunnel and no remote
// process behind.
func TestRunInterrupt(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 4})
	// The first node to make the directory finishes; the others sleep
	// until interrupted. The sleep's odd length finds its processes.
	first := filepath.Join(t.TempDir(), "first")
	nap := fmt.Sprintf("%d.%06d", 500, time.Now().UnixNano()%1e6)
	script := fmt.Sprintf("if mkdir %s; then echo done; else echo started; exec sleep %s; fi", first, nap)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb testio.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- Main(ctx, []string{"gkessh", "run", "--all", "--", script}, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	}()
	// The first node's tunnel closes once its session ended, exit status
	// in: only then is it finished, whenever the interrupt comes.
	waitUntil(t, 30*time.Second, func() bool {
		s := out.String()
		return strings.Count(s, " done\n") == 1 && strings.Count(s, " started\n") == 3 && e.srv.Stats().LiveTunnels == 3
	}, func() string { return out.String() + errb.String() })
	cancel()
	select {
	case code := <-exited:
		if code != exitInterrupted {
			t.Errorf("exit %d, want %d", code, exitInterrupted)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("run did not stop after the interrupt:\n%s", errb.String())
	}
	if !regexp.MustCompile(`\n4 nodes: 1 ok, 3 cancelled \(([^;]+: interrupted while running(; )?){3}\)\n$`).MatchString(errb.String()) {
		t.Errorf("summary does not say what finished:\n%s", errb.String())
	}
	waitUntil(t, 20*time.Second, func() bool {
		return e.srv.Stats().LiveTunnels == 0 && len(clientGoroutines()) == 0 && !processRunning(t, "sleep "+nap)
	}, func() string {
		return fmt.Sprintf("live tunnels %d, remote sleep running %v, gkessh goroutines:\n%s",
			e.srv.Stats().LiveTunnels, processRunning(t, "sleep "+nap), strings.Join(clientGoroutines(), "\n\n"))
	})
}

// waitUntil polls cond until it holds, failing with what() after timeout.
func waitUntil(t *testing.T, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v: %s", timeout, what())
		}
	}
}

// clientGoroutines are the stacks of goroutines that belong to a run: the
// CLI, fleet, the SSH client and the tunnel client. The emulator's own
// idle goroutines (listeners, guest agents) are not among them.
func clientGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "gkessh/internal/cli.TestRunInterrupt") || strings.Contains(g, "testing.(*T).Run") {
			continue
		}
		for _, pkg := range []string{"gkessh/fleet.", "gkessh/internal/broadcast.", "gkessh/sshclient.", "gkessh/internal/cli.", "golang.org/x/crypto/ssh.", "gkessh/tunnel.(*Conn)", "gorilla/websocket."} {
			if strings.Contains(g, pkg) {
				found = append(found, g)
				break
			}
		}
	}
	return found
}

// processRunning reports whether a process whose command line contains
// pattern exists.
func processRunning(t *testing.T, pattern string) bool {
	err := exec.Command("pgrep", "-f", pattern).Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return false
	}
	if err != nil {
		t.Fatalf("pgrep: %v", err)
	}
	return true
}

// TestRunRefusals: a node whose sshd is down and nodes that never take the
// key are reported as unreachable with their reason; after one node has
// waited the whole propagation timeout in vain, the others try once
// instead of waiting as long again.
func TestRunRefusals(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 2})
	down := e.srv.Nodes()[1]
	if err := e.srv.Node(down).SetSSHD(false); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := e.run("run", "--all", "--", "true")
	if code != 255 || !strings.HasSuffix(stderr, "2 nodes: 1 ok, 1 unreachable ("+down+": IAP cannot reach port 22: firewall closed for 35.235.240.0/20, VM stopped or sshd down)\n") {
		t.Errorf("sshd down: exit %d, stderr:\n%s", code, stderr)
	}

	// The guest agents take an hour: no node takes the key in time.
	e = newOwnEnv(t, emulator.Config{Nodes: 4, PropagationDelay: time.Hour})
	start := time.Now()
	_, stderr, code = e.run("run", "--all", "-P", "1", "--propagation-timeout", "500ms", "--", "true")
	took := time.Since(start)
	if code != 255 || !regexp.MustCompile(`4 nodes: 0 ok, 4 unreachable \(([^;]+: key refused(; )?){4}\)\n$`).MatchString(stderr) {
		t.Errorf("key refused: exit %d, stderr:\n%s", code, stderr)
	}
	// Waiting 15 s for each of the three others would take 45 s.
	if took > 12*time.Second {
		t.Errorf("run took %v: the nodes after the first waited for the key again", took)
	}
}

// onTerminal runs f with the terminal end of a new pseudo-terminal and
// returns what the terminal showed.
func onTerminal(t *testing.T, f func(tty *os.File)) string {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	var screen testio.Buffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&screen, master) // until the terminal end closes
		close(copied)
	}()
	f(tty)
	tty.Close()
	<-copied
	return screen.String()
}

// TestRunProgress: on a terminal stderr shows a progress line, redrawn in
// place and gone before the summary; piped, there is none.
func TestRunProgress(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 3})
	var out bytes.Buffer
	var code int
	s := onTerminal(t, func(tty *os.File) {
		code = Main(context.Background(), []string{"gkessh", "run", "--all", "--", "echo", "hi"}, Stdio{In: strings.NewReader(""), Out: &out, Err: tty})
	})
	if code != 0 || !strings.Contains(s, "[3/3 done, 0 not ok]") || !strings.Contains(s, "\r\x1b[K3 nodes: 3 ok") {
		t.Errorf("exit %d, terminal showed %q", code, s)
	}
	if strings.Contains(out.String(), "done,") {
		t.Errorf("progress went to stdout: %q", out.String())
	}
	_, stderr, _ := e.run("run", "--all", "--", "true")
	if strings.Contains(stderr, "done,") || strings.Contains(stderr, "\r") {
		t.Errorf("progress on a pipe: %q", stderr)
	}
}

// TestRunTimeoutAndFailFast: --timeout stops a node's command and counts
// as a failure (exit 1); --fail-fast starts no node after the first
// failure and lists the rest as not started.
func TestRunTimeoutAndFailFast(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 3})
	// The key and host keys go in first, so the timed run below spends its
	// time in the command, not in the propagation wait, however loaded
	// the machine.
	if _, stderr, code := e.run("run", "--all", "--", "true"); code != 0 {
		t.Fatalf("first run: exit %d, stderr:\n%s", code, stderr)
	}
	got, stderr, code := e.runJSON(nil, "--all", "--timeout", "4s", "--", "sleep 60")
	if code != 1 || len(got) != 3 {
		t.Fatalf("--timeout: exit %d, %d results, stderr:\n%s", code, len(got), stderr)
	}
	for n, r := range got {
		if r.Status != "failed" || r.Exit != nil || r.Error == nil || *r.Error != "timed out after 4s" || r.DurationMS < 4000 {
			t.Errorf("%s: %+v", n, r)
		}
	}

	got, stderr, code = e.runJSON(nil, "--all", "-P", "1", "--fail-fast", "--", "exit 4")
	nodes := e.srv.Nodes()
	first := got[nodes[0]]
	if code != 1 || first.Status != "failed" || first.Exit == nil || *first.Exit != 4 {
		t.Fatalf("--fail-fast: exit %d, first node %+v, stderr:\n%s", code, first, stderr)
	}
	for _, n := range nodes[1:] {
		if r := got[n]; r.Status != "cancelled" || r.Error == nil || !strings.Contains(*r.Error, "not started: an earlier node failed") {
			t.Errorf("%s after --fail-fast: %+v", n, r)
		}
	}
}

// TestRunHostileNames: an instance the API lists with a name outside GCE's
// grammar is skipped with a warning that shows it escaped, never run and
// never printed raw.
func TestRunHostileNames(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 2})
	evil := "gke-x\x1b]0;pwned\x07"
	if _, err := e.srv.AddNode(evil, "us-west1-a"); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := e.run("run", "--all", "--", "echo", "hi")
	if code != 0 || strings.Count(stdout, ": hi\n") != 2 {
		t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, "\x1b") || !strings.Contains(stderr, `skipping an instance: invalid instance name "gke-x\x1b]0;pwned\a"`) {
		t.Errorf("the hostile name was not skipped with an escaped warning:\n%q", stderr)
	}
}

// TestRunIAPRefused: a token that may write metadata but not use IAP's
// tunnels gets 4033 on every node: each is reported with the missing role
// and the run exits 255.
func TestRunIAPRefused(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 2})
	e.srv.AddGrant("no-iap", emulator.Grant{Projects: []string{e.srv.ProjectName()},
		Permissions: []string{"compute.projects.setCommonInstanceMetadata"}})
	tokenFile := filepath.Join(e.home, "no-iap")
	if err := os.WriteFile(tokenFile, []byte("no-iap"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := e.run("run", "--access-token-file", tokenFile, "--all", "--", "true")
	if code != 255 || !regexp.MustCompile(`2 nodes: 0 ok, 2 unreachable \(([^;]+: IAP refused: you lack roles/iap.tunnelResourceAccessor(; )?){2}\)\n$`).MatchString(stderr) {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

// TestRunOSLogin: a node with OS Login on gets the key through the gcloud
// account's OS Login profile, imported once, and is logged in to as the
// profile's POSIX user (its guest installs the key for no one else), while
// the other node takes a metadata key; without a gcloud account the OS
// Login node is unreachable with the reason, and the others still run.
func TestRunOSLogin(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 3})
	nodes := e.srv.Nodes()
	osl, other := nodes[:2], nodes[2]
	for _, n := range osl {
		if err := e.srv.SetInstanceMetadata(n, map[string]*string{"enable-oslogin": ptrTo("TRUE")}); err != nil {
			t.Fatal(err)
		}
	}
	got, stderr, code := e.runJSON(nil, "--all", "--", "true")
	if r := got[osl[0]]; code != 255 || r.Status != "unreachable" || r.Error == nil || !strings.Contains(*r.Error, "gcloud config set account") {
		t.Errorf("no account: exit %d, %s: %+v, stderr:\n%s", code, osl[0], r, stderr)
	}
	if r := got[other]; r.Status != "ok" {
		t.Errorf("no account: the other node: %+v", r)
	}
	t.Setenv("CLOUDSDK_CORE_ACCOUNT", "owner@"+e.srv.ProjectName()+".example") // the emulator token's principal
	writes := e.srv.Stats().MetadataWrites
	got, stderr, code = e.runJSON(nil, "-v", "--all", "--", "true")
	for _, n := range nodes {
		if r := got[n]; code != 0 || r.Status != "ok" {
			t.Errorf("exit %d, %s: %+v, stderr:\n%s", code, n, r, stderr)
		}
	}
	if n := strings.Count(stderr, "Imported your key into the OS Login profile"); n != 1 {
		t.Errorf("the key was imported %d times for two OS Login nodes, want once:\n%s", n, stderr)
	}
	if got := e.srv.Stats().MetadataWrites; got != writes {
		t.Errorf("%d metadata writes; the other node's key was already there", got-writes)
	}
}

// TestRunParallelBound: -P N never has more than N commands running: each
// node's command appends s when it starts and e when it ends, and the
// file's order bounds how many overlapped.
func TestRunParallelBound(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 8})
	log := filepath.Join(t.TempDir(), "log")
	_, stderr, code := e.run("run", "--all", "-P", "3", "--", fmt.Sprintf("echo s >> %s; sleep 0.2; echo e >> %s", log, log))
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	running, most := 0, 0
	for _, l := range strings.Fields(string(b)) {
		if l == "s" {
			running++
		} else {
			running--
		}
		most = max(most, running)
	}
	if most > 3 || strings.Count(string(b), "s") != 8 {
		t.Errorf("%d commands ran at once with -P 3 (log %q)", most, b)
	}
}

// TestRunRefusedWritesNothing: when IAP refuses every node, the run writes
// no key line, as a refused login does.
func TestRunRefusedWritesNothing(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 3})
	for _, n := range e.srv.Nodes() {
		e.srv.Node(n).SetFirewall(false)
	}
	_, stderr, code := e.run("run", "--all", "--", "true")
	if code != 255 || !strings.Contains(stderr, "3 unreachable") {
		t.Fatalf("exit %d, want 255 with 3 unreachable; stderr:\n%s", code, stderr)
	}
	if w := e.srv.Stats().MetadataWrites; w != 0 {
		t.Errorf("%d metadata writes for a run IAP refused everywhere, want 0", w)
	}
}

// TestInterruptExits130: a login stopped by Ctrl-C (its context cancelled)
// says "interrupted" and exits 130, as run does and as a shell reports a
// process SIGINT ended; it used to say "session ended: context canceled"
// and exit 255, a failure of gkessh's own. No tunnel or remote process is
// left behind.
func TestInterruptExits130(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	for i, tc := range []struct {
		name string
		args []string
		said string // stderr's end
	}{
		{"login", []string{node, "--"}, "\ngkessh: interrupted\n"},
		{"run", []string{"run", node, "--"}, ": interrupted while running)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nap := fmt.Sprintf("%d.%06d", 300+i, time.Now().UnixNano()%1e6)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out, errb testio.Buffer
			exited := make(chan int, 1)
			go func() {
				args := slices.Concat([]string{"gkessh"}, tc.args, []string{"echo started; exec sleep " + nap})
				exited <- Main(ctx, args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
			}()
			waitUntil(t, 30*time.Second, func() bool { return strings.Contains(out.String(), "started") }, func() string { return errb.String() })
			cancel()
			select {
			case code := <-exited:
				if code != exitInterrupted {
					t.Errorf("exit %d, want %d:\n%s", code, exitInterrupted, errb.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("did not stop after the interrupt:\n%s", errb.String())
			}
			if !strings.HasSuffix(errb.String(), tc.said) {
				t.Errorf("stderr does not end with %q:\n%s", tc.said, errb.String())
			}
			waitUntil(t, 20*time.Second, func() bool {
				return e.srv.Stats().LiveTunnels == 0 && !processRunning(t, "sleep "+nap)
			}, func() string {
				return fmt.Sprintf("%+v; remote sleep running: %v", e.srv.Stats(), processRunning(t, "sleep "+nap))
			})
		})
	}
}

// TestFleetGCPercent: a run on many nodes collects garbage less often
// (fleetGCPercent) while it runs, unless the user set GOGC, and puts the
// old setting back when it ends; a run on one node and a copy to many do
// not change it. The setting is read as each request reaches the
// emulator, tunnels included. Not parallel: the setting is the process's.
func TestFleetGCPercent(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 3})
	var (
		mu   sync.Mutex
		peak uint64 // the highest GOGC a request saw
	)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		peak = max(peak, gcPercent())
		mu.Unlock()
		e.srv.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	e.url = front.URL
	for k, v := range e.environ() {
		t.Setenv(k, v)
	}
	one := e.srv.Nodes()[0]
	src := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(src, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	cases := []struct {
		name string
		gogc string // set in the environment when not ""
		args []string
		want uint64 // while it runs
	}{
		{"one node", "", []string{"run", one, "--", "true"}, 100},
		{"all", "", []string{"run", "--all", "--", "true"}, fleetGCPercent},
		{"all, GOGC set", "100", []string{"run", "--all", "--", "true"}, 100},
		{"cp to all", "", []string{"cp", "--all", src, ":" + dest + "/"}, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", tc.gogc) // restored after
			if tc.gogc == "" {
				os.Unsetenv("GOGC")
			}
			debug.SetGCPercent(100)
			mu.Lock()
			peak = 0
			mu.Unlock()
			if _, stderr, code := e.run(tc.args...); code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr)
			}
			mu.Lock()
			defer mu.Unlock()
			if peak != tc.want {
				t.Errorf("GC percent %d while it ran, want %d", peak, tc.want)
			}
			if got := gcPercent(); got != 100 {
				t.Errorf("GC percent %d after the run, want 100 back", got)
			}
		})
	}
}

// gcPercent is the process's GOGC, read without setting it.
func gcPercent() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
