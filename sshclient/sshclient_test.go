//go:build unix

package sshclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/pty"
	"github.com/gkessh/gkessh/internal/testio"
	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/knownhosts"
)

const testUser = "alice"

// testNode is an emulated node and a key that is not yet in its metadata.
type testNode struct {
	srv    *emulator.Server
	node   *emulator.Node
	signer ssh.Signer
	user   string
	known  string // known_hosts file
}

// newTestNode starts an emulator with one node running the builtin sshd.
func newTestNode(t *testing.T, delay time.Duration) *testNode {
	return newTestNodeMode(t, delay, "builtin")
}

// newTestNodeMode is newTestNode for either sshd mode; with OpenSSH the
// user must be a real account, so it is the current one.
func newTestNodeMode(t *testing.T, delay time.Duration, mode string) *testNode {
	t.Helper()
	name := testUser
	if mode == "openssh" {
		if _, err := os.Stat(emulator.SSHDPath); err != nil {
			t.Skipf("no OpenSSH server: %v", err)
		}
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		name = u.Username
	}
	srv, err := emulator.New(emulator.Config{Nodes: 1, PropagationDelay: delay, SSHD: mode, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &testNode{srv: srv, node: srv.Node(srv.Nodes()[0]), signer: testkey.Signer(t), user: name, known: filepath.Join(t.TempDir(), "known_hosts")}
}

// upsert puts the key into project metadata, as metakeys.Ensure would.
func (n *testNode) upsert(t *testing.T) {
	t.Helper()
	line := keys.FormatLine(n.user, n.signer.PublicKey(), "test")
	if err := n.srv.SetProjectMetadata(map[string]*string{"ssh-keys": &line}); err != nil {
		t.Fatal(err)
	}
}

func (n *testNode) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", n.node.SSHAddr())
}

// config verifies host keys the way gkessh does, pinning the published ones.
func (n *testNode) config(t *testing.T) Config {
	t.Helper()
	alias := knownhosts.HostAlias(n.node.ID)
	check, err := knownhosts.Verifier{File: knownhosts.KnownHosts{Path: n.known}, Alias: alias, Published: n.node.HostKeys(), Mode: knownhosts.StrictYes}.Prepare(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		User: n.user, Signers: []ssh.Signer{n.signer},
		HostKeyCallback: check.Callback, HostKeyAlgorithms: check.Algorithms, HostKeyAlias: alias, Name: n.node.Name,
		Logf: t.Logf,
	}
}

// login upserts the key and logs in, waiting for it to propagate; the
// client closes with the test.
func (n *testNode) login(t *testing.T) *ssh.Client {
	t.Helper()
	n.upsert(t)
	cfg := n.config(t)
	cfg.Wait = true
	c, err := Connect(context.Background(), n.dial, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// installedAt watches the node and returns when the guest agent installed
// the key, or the zero time if it has not by the time stop is closed.
func (n *testNode) installedAt(stop <-chan struct{}) <-chan time.Time {
	out := make(chan time.Time, 1)
	go func() {
		defer close(out)
		for {
			if len(n.node.InstalledKeys()[n.user]) > 0 {
				out <- time.Now()
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return out
}

func TestConnectWaitsForPropagation(t *testing.T) {
	const delay = time.Second // the emulator's default, like a real guest
	n := newTestNode(t, delay)
	stop := make(chan struct{})
	installed := n.installedAt(stop)
	cfg := n.config(t)
	var progress bytes.Buffer
	cfg.Wait, cfg.Progress, cfg.Logf = true, &progress, nil
	start := time.Now()
	n.upsert(t)
	c, err := Connect(context.Background(), n.dial, cfg)
	loggedIn := time.Now()
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	at := <-installed
	if at.IsZero() {
		t.Fatal("logged in, but the key was never seen installed")
	}
	lag := loggedIn.Sub(at)
	t.Logf("upsert→install %v, install→login %v, total %v", at.Sub(start).Round(time.Millisecond), lag.Round(time.Millisecond), loggedIn.Sub(start).Round(time.Millisecond))
	// The goal is under a second: the longest retry interval plus one
	// login; the slack absorbs a loaded test machine.
	if lag > maxRetryInterval+500*time.Millisecond {
		t.Errorf("login came %v after the key was installed, want under 1s", lag)
	}
	if !strings.HasPrefix(progress.String(), waitingMsg+" done (") {
		t.Errorf("progress %q", progress.String())
	}
}

func TestNextRetry(t *testing.T) {
	cases := []struct {
		waited, prev, want time.Duration
	}{
		{0, firstRetryInterval, firstRetryInterval},
		{1900 * time.Millisecond, firstRetryInterval, firstRetryInterval}, // a quick guest: every 0.1 s
		{fastWait, firstRetryInterval, 150 * time.Millisecond},            // then growing
		{3 * time.Second, 150 * time.Millisecond, 225 * time.Millisecond},
		{5 * time.Second, 600 * time.Millisecond, maxRetryInterval},
		{time.Minute, maxRetryInterval, maxRetryInterval},
	}
	for _, c := range cases {
		if got := nextRetry(c.waited, c.prev); got != c.want {
			t.Errorf("nextRetry(%v, %v) = %v, want %v", c.waited, c.prev, got, c.want)
		}
	}
}

func TestConnectFailures(t *testing.T) {
	n := newTestNode(t, 0)
	errDial := errors.New("tunnel refused")
	cases := []struct {
		name   string
		tweak  func(*Config, context.CancelFunc)
		within time.Duration
		check  func(error) bool
	}{
		// The bounds are generous, for a loaded machine's handshakes: what
		// they catch is the default wait, 2 minutes.
		{"refused without wait", func(c *Config, _ context.CancelFunc) {}, 10 * time.Second,
			func(err error) bool { return IsAuthFailure(err) && strings.Contains(err.Error(), "refused key") }},
		{"propagation timeout", func(c *Config, _ context.CancelFunc) { c.Wait, c.Timeout = true, 400*time.Millisecond }, 10 * time.Second,
			func(err error) bool {
				return strings.Contains(err.Error(), "guest agent") && strings.Contains(err.Error(), "block-project-ssh-keys") && strings.Contains(err.Error(), "OS Login")
			}},
		{"host key refused at once", func(c *Config, _ context.CancelFunc) {
			c.Wait = true
			c.HostKeyCallback = func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.HostKeyError{} }
		}, 10 * time.Second, func(err error) bool {
			var he *knownhosts.HostKeyError
			return errors.As(err, &he)
		}},
		{"dial failure at once", func(c *Config, _ context.CancelFunc) { c.Wait = true }, 10 * time.Second,
			func(err error) bool { return errors.Is(err, errDial) }},
		// The wait would last a minute: ending with Canceled, not a
		// timeout, shows the cancel ended it, however loaded the machine.
		{"canceled while waiting", func(c *Config, cancel context.CancelFunc) {
			c.Wait, c.Timeout = true, time.Minute
			time.AfterFunc(300*time.Millisecond, cancel)
		}, 30 * time.Second, func(err error) bool { return errors.Is(err, context.Canceled) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg := n.config(t)
			tc.tweak(&cfg, cancel)
			dial := n.dial
			if tc.name == "dial failure at once" {
				dial = func(context.Context) (net.Conn, error) { return nil, errDial }
			}
			start := time.Now()
			c, err := Connect(ctx, dial, cfg)
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if took := time.Since(start); took > tc.within {
				t.Errorf("took %v, want under %v", took, tc.within)
			}
			if !tc.check(err) {
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
}

func TestRun(t *testing.T) {
	c := newTestNode(t, 0).login(t)
	cases := []struct {
		args        []string
		stdin       string
		out, errOut string
		status      int
		pty         bool
	}{
		{args: []string{"sh", "-c", "exit 7"}, status: 7},
		{args: []string{"echo out; echo err >&2"}, out: "out\n", errOut: "err\n"},
		{args: []string{"printf", "%s|", "it's", "a b"}, out: "it's|a b|"},
		{args: []string{"wc -c"}, stdin: strings.Repeat("x", 1<<20), out: fmt.Sprintf("%d\n", 1<<20)},
		{args: []string{"kill -KILL $$"}, status: 128 + 9},
		{args: []string{"test -t 0 && stty size"}, pty: true, out: "24 80\r\n"},
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		status, err := Run(context.Background(), c, Session{
			Command: CommandLine(tc.args), Stdin: strings.NewReader(tc.stdin), Stdout: &out, Stderr: &errOut, PTY: tc.pty,
		})
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if status != tc.status || out.String() != tc.out || errOut.String() != tc.errOut {
			t.Errorf("%q: got (%d, %q, %q), want (%d, %q, %q)", tc.args, status, out.String(), errOut.String(), tc.status, tc.out, tc.errOut)
		}
	}
}

// TestRunTerminal drives a session from a local terminal: its size goes
// along, and a resize (SIGWINCH) reaches the remote terminal.
func TestRunTerminal(t *testing.T) {
	c := newTestNode(t, 0).login(t)
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer tty.Close()
	if err := pty.SetSize(tty, 30, 100); err != nil {
		t.Fatal(err)
	}
	out := &testio.Buffer{}
	done := make(chan error, 1)
	// The remote side polls its terminal size until the resize shows.
	poll := `stty size; i=0; while [ "$(stty size)" != "50 132" ]; do i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.05; done; echo resized`
	go func() {
		status, err := Run(context.Background(), c, Session{Command: poll, PTY: true, Terminal: tty, Stdout: out})
		if err == nil && status != 0 {
			err = fmt.Errorf("exit status %d: the resize never arrived", status)
		}
		done <- err
	}()
	out.WaitFor(t, "30 100", time.Minute)
	if err := pty.SetSize(tty, 50, 132); err != nil {
		t.Fatal(err)
	}
	// Not a controlling terminal of ours, so the kernel does not signal
	// us: do it as it would.
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("%v; output %q", err, out.String())
	}
	if !strings.Contains(out.String(), "resized") {
		t.Errorf("output %q", out.String())
	}
}

func TestCommandLine(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"ls *.log | wc -l"}, "ls *.log | wc -l"},
		{[]string{"sh", "-c", "exit 7"}, "sh -c 'exit 7'"},
		{[]string{"echo", "it's", ""}, `echo 'it'\''s' ''`},
		{[]string{"id", "-u", "user@host:/a_b.c=1,2%"}, "id -u user@host:/a_b.c=1,2%"},
	}
	for _, tc := range cases {
		if got := CommandLine(tc.args); got != tc.want {
			t.Errorf("CommandLine(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestRunForwardAgent: with ForwardAgent, the remote ssh-add lists the keys
// of the local agent. OpenSSH only: the builtin server does not forward.
func TestRunForwardAgent(t *testing.T) {
	if _, err := exec.LookPath("ssh-add"); err != nil {
		t.Skip("ssh-add not installed")
	}
	c := newTestNodeMode(t, 0, "openssh").login(t)
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: testkey.Key(t), Comment: "forwarded-key"}); err != nil {
		t.Fatal(err)
	}
	var out, errOut, warn bytes.Buffer
	status, err := Run(context.Background(), c, Session{Command: "ssh-add -l", Stdout: &out, Stderr: &errOut, ForwardAgent: keyring, Warn: &warn})
	if err != nil || status != 0 || !strings.Contains(out.String(), "forwarded-key") {
		t.Errorf("ssh-add -l: status %d, %v, output %q, stderr %q, warnings %q", status, err, out.String(), errOut.String(), warn.String())
	}
}

// freezable is a connection that can go silent: once frozen it drops what
// is written and delivers nothing more, as a dead network path does, until
// it is closed.
type freezable struct {
	net.Conn
	frozen atomic.Bool
	closed chan struct{}
	once   sync.Once
}

func (c *freezable) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.frozen.Load() {
		<-c.closed
		return 0, net.ErrClosed
	}
	return n, err
}

func (c *freezable) Write(p []byte) (int, error) {
	if c.frozen.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *freezable) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestRunKeepAlive: a session whose path goes silent ends with
// ErrNotAlive after AliveCountMax unanswered keepalives, instead of
// hanging on.
func TestRunKeepAlive(t *testing.T) {
	n := newTestNode(t, 0)
	n.upsert(t)
	var fc *freezable
	dial := func(ctx context.Context) (net.Conn, error) {
		c, err := n.dial(ctx)
		if err != nil {
			return nil, err
		}
		fc = &freezable{Conn: c, closed: make(chan struct{})}
		return fc, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := Connect(ctx, dial, n.config(t))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	stdinR, stdinW := io.Pipe() // keeps the shell waiting
	defer stdinW.Close()
	var out testio.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, client, Session{Command: "cat", Stdin: stdinR, Stdout: &out, Stderr: &out, AliveInterval: 50 * time.Millisecond, AliveCountMax: 3})
		done <- err
	}()
	stdinW.Write([]byte("up\n"))
	out.WaitFor(t, "up", 2*time.Minute)
	fc.frozen.Store(true)
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotAlive) {
			t.Fatalf("Run = %v, want ErrNotAlive", err)
		}
	case <-ctx.Done():
		t.Fatal("the session outlived a dead path")
	}
}

// TestConnectWaitMessages: -v lines during the propagation wait start on a
// line of their own (the waiting line is cleared first, on a terminal or
// not), and Ctrl-C during the wait says "interrupted", not "context
// canceled".
func TestConnectWaitMessages(t *testing.T) {
	for _, live := range []bool{false, true} {
		n := newTestNode(t, 0)
		cfg := n.config(t)
		var out bytes.Buffer // progress and -v lines, as on one stderr
		ctx, cancel := context.WithCancel(context.Background())
		attempts := 0
		cfg.Wait, cfg.Progress, cfg.Live = true, &out, live
		cfg.Logf = func(format string, args ...any) {
			fmt.Fprintf(&out, "gkessh: "+format+"\n", args...)
			if attempts++; attempts == 3 {
				cancel() // no key was written: only Ctrl-C ends this wait
			}
		}
		_, err := Connect(ctx, n.dial, cfg)
		cancel()
		var ie *InterruptedError
		if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) ||
			!strings.Contains(err.Error(), "interrupted") || strings.Contains(err.Error(), "context canceled") {
			t.Errorf("live %v: Ctrl-C during the wait: %v", live, err)
		}
		for _, line := range strings.Split(out.String(), "\n") {
			if i := strings.Index(line, "gkessh: login attempt"); i > 0 && !strings.HasSuffix(line[:i], "\r\033[K") {
				t.Errorf("live %v: a -v line shares the waiting line: %q", live, line)
			}
		}
	}
}

// TestConnectRefusedUserFailsFast: an sshd that takes no key for the user
// ends the propagation wait at once, with the reason its banner gives. The
// emulator's OpenSSH sshd refuses so a user with no account on its host
// when run as root, and any user but its own otherwise.
func TestConnectRefusedUserFailsFast(t *testing.T) {
	n := newTestNodeMode(t, 0, "openssh")
	reason := "no account gkessh-no-such-user on the emulator's host"
	if os.Geteuid() != 0 {
		reason = "not root, so it can log in only as"
	}
	n.user = "gkessh-no-such-user"
	n.upsert(t)
	cfg := n.config(t)
	cfg.Wait, cfg.Timeout = true, time.Minute
	start := time.Now()
	c, err := Connect(context.Background(), n.dial, cfg)
	if err == nil {
		c.Close()
		t.Fatal("connected")
	}
	t.Logf("error: %v", err)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("took %v, want well under the %v wait", took, cfg.Timeout)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("error does not give the reason: %v", err)
	}
}

// TestKeyRefusedBannerOneLine: the server's pre-auth banner, which the
// server writes, stays on the refusal's one line: its own lines could pass
// for gkessh's ("gkessh: ...").
func TestKeyRefusedBannerOneLine(t *testing.T) {
	err := &KeyRefusedError{User: "u", Name: "n", Keys: "SHA256:x", Err: errors.New("no"), Banner: "Refused:\r\n  account locked\ngkessh: all good"}
	got := err.Error()
	if strings.ContainsAny(got, "\r\n") || !strings.Contains(got, "the server says: Refused: | account locked | gkessh: all good") {
		t.Errorf("Error() = %q", got)
	}
}
