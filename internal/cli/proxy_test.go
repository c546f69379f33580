//go:build unix

package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/testnet"
)

// nodeServer serves a node port with handle, one goroutine per connection.
// When the test ends it closes the listener and the connections, and waits.
func nodeServer(t *testing.T, n *emulator.Node, port int, handle func(net.Conn)) {
	t.Helper()
	n.ForwardPort(port, testnet.Serve(t, func(c net.Conn) {
		defer c.Close()
		handle(c)
	}))
}

// echoLine answers one line with it upper-cased, then closes.
func echoLine(c net.Conn) {
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	c.Write([]byte(strings.ToUpper(line)))
}

// proxyRun is one in-process `gkessh proxy` with pipes for stdin and stdout.
type proxyRun struct {
	stdin  *os.File // write end
	stdout *os.File // read end
	stderr bytes.Buffer
	code   chan int
	// hangUp ends the proxy the way ssh's SIGHUP does when ssh exits.
	hangUp context.CancelFunc
}

func startProxy(t *testing.T, args ...string) *proxyRun {
	t.Helper()
	return startGkessh(t, append([]string{"proxy"}, args...)...)
}

// startGkessh is startProxy for any gkessh command line.
func startGkessh(t *testing.T, args ...string) *proxyRun {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proxyRun{stdin: inW, stdout: outR, code: make(chan int, 1), hangUp: cancel}
	go func() {
		defer inR.Close()
		defer outW.Close()
		p.code <- Main(ctx, append([]string{"gkessh"}, args...), Stdio{In: inR, Out: outW, Err: &p.stderr})
	}()
	t.Cleanup(func() {
		cancel()
		inW.Close()
		outR.Close()
	})
	return p
}

// wait returns the exit status, failing the test after 10 s.
func (p *proxyRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-p.code:
		return code
	case <-time.After(10 * time.Second):
		t.Fatalf("gkessh proxy did not exit; stderr:\n%s", p.stderr.String())
		return -1
	}
}

func TestProxy(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	nodeServer(t, e.srv.Node(node), 7, echoLine)

	// As an ssh config written for gcloud has it, with the command changed:
	// ProxyCommand gcloud compute start-iap-tunnel %h %p --listen-on-stdin --zone=Z
	p := startProxy(t, node, "7", "--listen-on-stdin", "--zone="+e.srv.Node(node).Zone)
	if _, err := p.stdin.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(p.stdout)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "HELLO\n" {
		t.Errorf("stdout %q, want only the node's answer", out)
	}
	if code := p.wait(t); code != 0 {
		t.Errorf("exit %d, stderr %q", code, p.stderr.String())
	}
}

// TestProxyHalfClose checks that EOF on stdin does not end the session:
// the node's answer still arrives, then the proxy exits 0.
func TestProxyHalfClose(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	nodeServer(t, e.srv.Node(node), 7, func(c net.Conn) {
		echoLine(c)
		time.Sleep(100 * time.Millisecond)
		c.Write([]byte("late\n"))
	})
	p := startProxy(t, node, "7")
	if _, err := p.stdin.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	p.stdin.Close()
	out, err := io.ReadAll(p.stdout)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "HI\nlate\n" {
		t.Errorf("stdout %q, want the whole answer", out)
	}
	if code := p.wait(t); code != 0 {
		t.Errorf("exit %d, stderr %q", code, p.stderr.String())
	}
}

// TestProxyWarm checks that once the node's zone is cached, proxy makes no
// Compute API call.
func TestProxyWarm(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	nodeServer(t, e.srv.Node(node), 7, echoLine)
	for i, wantCalls := range []bool{true, false} {
		before := e.srv.Stats().APICalls
		p := startProxy(t, node, "7")
		p.stdin.Write([]byte("x\n"))
		if out, _ := io.ReadAll(p.stdout); string(out) != "X\n" {
			t.Fatalf("run %d: stdout %q", i, out)
		}
		if code := p.wait(t); code != 0 {
			t.Fatalf("run %d: exit %d: %s", i, code, p.stderr.String())
		}
		if calls := e.srv.Stats().APICalls - before; (calls > 0) != wantCalls {
			t.Errorf("run %d made %d API calls", i, calls)
		}
	}
}

// TestProxyMissingNodeNoList: a ProxyCommand for a node no instance has (a
// stale inventory runs one per deleted node) makes the one lookup and no
// list of the project for a suggestion, which a login makes.
func TestProxyMissingNodeNoList(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 2})
	node := e.srv.Nodes()[0]
	typo := node[:len(node)-1]
	tests := []struct {
		args      []string
		wantCalls int64
		suggested bool
	}{
		{[]string{"proxy", typo, "22"}, 1, false},
		{[]string{typo, "--", "true"}, 2, true},
	}
	for _, tt := range tests {
		before := e.srv.Stats().APICalls
		_, stderr, code := e.run(tt.args...)
		calls := e.srv.Stats().APICalls - before
		if code != exitFailure || !strings.Contains(stderr, "no instance named "+typo) || calls != tt.wantCalls ||
			strings.Contains(stderr, "did you mean "+node) != tt.suggested {
			t.Errorf("gkessh %s: exit %d, %d API calls, stderr %q; want 255, %d calls, a suggestion %v",
				strings.Join(tt.args, " "), code, calls, stderr, tt.wantCalls, tt.suggested)
		}
	}
}

// TestProxyRefused checks that a tunnel the relay refuses exits 255 at once
// with one line saying what to fix, and nothing on stdout.
func TestProxyRefused(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 2})
	node, other := e.srv.Nodes()[0], e.srv.Nodes()[1]
	n := e.srv.Node(node)
	nodeServer(t, n, 7, echoLine)
	// Warm the zone cache for both nodes, so refusals come from the relay.
	for _, name := range []string{node, other} {
		if _, stderr, code := e.run("proxy", "--zone", e.srv.Node(name).Zone, name, "9"); code != 255 {
			t.Fatalf("warm-up: exit %d: %s", code, stderr)
		}
	}
	wrongToken := filepath.Join(e.home, "wrong-token")
	if err := os.WriteFile(wrongToken, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		setup func(t *testing.T)
		node  string
		port  int
		want  string
	}{
		{"nothing listening", func(*testing.T) {}, node, 9, "4003"},
		{"firewall closed", func(t *testing.T) {
			n.SetFirewall(false)
			t.Cleanup(func() { n.SetFirewall(true) })
		}, node, 7, "--source-ranges=35.235.240.0/20"},
		{"vm stopped", func(t *testing.T) {
			n.SetStatus("TERMINATED")
			t.Cleanup(func() { n.SetStatus("RUNNING") })
			// The warm path dials first; on 4003 it asks why, and says so.
		}, node, 7, "is TERMINATED, not RUNNING: start it (gcloud compute instances start " + node},
		{"not authorized", func(t *testing.T) { t.Setenv("GKESSH_ACCESS_TOKEN_FILE", wrongToken) }, node, 7, "roles/iap.tunnelResourceAccessor"},
		{"instance gone", func(t *testing.T) {
			if err := e.srv.RemoveNode(other); err != nil {
				t.Fatal(err)
			}
		}, other, 7, "4047"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup(t)
			start := time.Now()
			stdout, stderr, code := e.run("proxy", tt.node, strconv.Itoa(tt.port))
			if code != 255 {
				t.Errorf("exit %d, want 255", code)
			}
			// Generous for a loaded machine; a refusal retried with backoff
			// would take longer.
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q, want one line saying %q", stderr, tt.want)
			}
		})
	}
	// The relay said the instance is gone, so its cached zone was dropped
	// and the next run asks the API.
	if _, stderr, _ := e.run("proxy", other, "7"); !strings.Contains(stderr, "no instance named") {
		t.Errorf("after 4047: %q, want a fresh lookup saying the instance does not exist", stderr)
	}
}

// TestProxyResume pushes 4 MiB each way through the proxy while every
// websocket is dropped after 512 KiB.
func TestProxyResume(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	const size = 4 << 20
	nodeServer(t, e.srv.Node(node), 7, func(c net.Conn) { io.CopyN(c, c, size) })
	e.srv.SetFaults(emulator.Faults{DropAfterBytes: 512 << 10})

	want := make([]byte, size)
	if _, err := rand.Read(want); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, node, "7")
	go func() {
		p.stdin.Write(want)
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(p.stdout, got); err != nil {
		t.Fatalf("read: %v; stderr %s", err, p.stderr.String())
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatal("echo differs from what was sent")
	}
	if code := p.wait(t); code != 0 {
		t.Errorf("exit %d: %s", code, p.stderr.String())
	}
	// 4 MiB must cross each way, so even counting one direction alone the
	// relay dropped the websocket at least 8 times; the exact count
	// depends on how the two directions interleave.
	if n := e.srv.Stats().Tunnels; n < 9 {
		t.Errorf("%d websockets, want at least 9 with drops every 512 KiB", n)
	}
}

// TestTunnelCommand forwards a local port: several connections at once,
// each with its own tunnel, then Ctrl-C. The flag comes after the
// arguments, as in the usage line.
func TestTunnelCommand(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	nodeServer(t, e.srv.Node(node), 8080, echoLine)

	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	code := make(chan int, 1)
	go func() {
		defer outW.Close()
		code <- Main(ctx, []string{"gkessh", "tunnel", node, "8080", "--listen", "127.0.0.1:0"}, Stdio{In: strings.NewReader(""), Out: outW, Err: &stderr})
	}()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("no address printed: %v", err)
	}
	addr := strings.Fields(line)[2]
	addr = strings.TrimSuffix(addr, ",")

	const conns = 5
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			msg := "conn " + strconv.Itoa(i) + "\n"
			c.Write([]byte(msg))
			got, err := io.ReadAll(c)
			if err != nil || string(got) != strings.ToUpper(msg) {
				t.Errorf("got %q, %v; want %q", got, err, strings.ToUpper(msg))
			}
		}()
	}
	wg.Wait()
	if n := e.srv.Stats().Tunnels; n != conns+1 {
		t.Errorf("%d tunnels for %d connections and the connection check", n, conns)
	}

	// A connection still open at Ctrl-C is closed, and the command exits 0.
	open, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit %d: %s", c, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gkessh tunnel did not stop on cancel")
	}
	open.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := open.Read(make([]byte, 1)); err == nil {
		t.Error("local connection still open after the command stopped")
	}
}

// TestProxyNodeRecreated: a node recreated under the same name has a new
// id; the proxy started with the id config-ssh pinned says what to do
// instead of handing ssh a host key it will call changed.
func TestProxyNodeRecreated(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	old := e.srv.Node(node)
	if _, errOut, code := e.run("config-ssh", "--user", "nat"); code != 0 {
		t.Fatalf("config-ssh: %s", errOut)
	}
	b, _ := os.ReadFile(filepath.Join(e.home, ".ssh", "config"))
	if want := fmt.Sprintf(" --instance-id %d ", old.ID); !strings.Contains(string(b), want) {
		t.Fatalf("the ProxyCommand lacks %q:\n%s", want, b)
	}
	if err := e.srv.RemoveNode(node); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.AddNode(node, old.Zone); err != nil {
		t.Fatal(err)
	}
	// The zone cache has expired (or was never filled on this machine).
	if err := os.RemoveAll(filepath.Join(e.home, ".cache", "gkessh")); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, "--user", "nat", "--instance-id", fmt.Sprint(old.ID), "--zone", old.Zone, node)
	if code := p.wait(t); code != 255 {
		t.Fatalf("exit %d, want 255; stderr %s", code, p.stderr.String())
	}
	if got := p.stderr.String(); !strings.Contains(got, "the node was recreated") || !strings.Contains(got, "run `gkessh config-ssh`") {
		t.Fatalf("stderr: %s", got)
	}
}
