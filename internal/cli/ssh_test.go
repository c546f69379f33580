//go:build unix

package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/pty"
	"github.com/gkessh/gkessh/internal/testio"
	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/internal/testnet"
	"github.com/gkessh/gkessh/knownhosts"
)

// sshdModes are the emulator's node SSH servers the login tests run
// against; openssh needs sshd. -short (make test-short) keeps to builtin.
func sshdModes() []string {
	if testing.Short() {
		return []string{"builtin"}
	}
	return []string{"builtin", "openssh"}
}

func newSSHTestEnv(t *testing.T, mode string, nodes int) *testEnv {
	t.Helper()
	return newTestEnv(t, sshTestConfig(t, mode, nodes))
}

// newParallelSSHEnv is newSSHTestEnv for a parallel test (newParallelEnv).
func newParallelSSHEnv(t *testing.T, mode string, nodes int) *testEnv {
	t.Helper()
	return newParallelEnv(t, sshTestConfig(t, mode, nodes))
}

func sshTestConfig(t *testing.T, mode string, nodes int) emulator.Config {
	t.Helper()
	if mode == "openssh" {
		if _, err := os.Stat(emulator.SSHDPath); err != nil {
			t.Skipf("no OpenSSH server: %v", err)
		}
	}
	return emulator.Config{Nodes: nodes, SSHD: mode, PropagationDelay: 300 * time.Millisecond}
}

func (e *testEnv) node(i int) *emulator.Node { return e.srv.Node(e.srv.Nodes()[i]) }

func (e *testEnv) knownHosts() string {
	return filepath.Join(e.home, ".ssh", knownhosts.KnownHostsName)
}

// TestSSHFirstLogin: on a fresh HOME the key is generated, upserted and
// waited for, the published host keys are pinned, the output is the
// command's, and the remote exit status comes back; the next login writes
// nothing and does not wait.
func TestSSHFirstLogin(t *testing.T) {
	t.Parallel()
	for _, mode := range sshdModes() {
		t.Run(mode, func(t *testing.T) {
			e := newParallelSSHEnv(t, mode, 1)
			// Long enough that the first try always comes before the key
			// is installed, even on a loaded machine, so the wait shows.
			e.srv.SetPropagationDelay(2 * time.Second)
			n := e.node(0)
			stdout, stderr, code := e.run(n.Name, "--", "echo", "hello from", "$HOSTNAME")
			if code != 0 || stdout != "hello from $HOSTNAME\n" {
				t.Fatalf("first login: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
			}
			for _, want := range []string{
				"Generated SSH key " + filepath.Join(e.home, ".ssh", "google_compute_engine"),
				"key to project metadata ssh-keys, expiring",
				"Pinned 2 host keys of " + n.Name,
				"Waiting for SSH key to propagate… done (",
			} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			known, err := os.ReadFile(e.knownHosts())
			if err != nil {
				t.Fatal(err)
			}
			var want strings.Builder
			for _, k := range n.HostKeys() {
				fmt.Fprintf(&want, "%s %s", knownhosts.HostAlias(n.ID), ssh.MarshalAuthorizedKey(k))
			}
			if string(known) != want.String() {
				t.Errorf("known hosts:\n%s\nwant the published keys:\n%s", known, want.String())
			}

			writes := e.srv.Stats().MetadataWrites
			stdout, stderr, code = e.run(n.Name, "--", "sh", "-c", "echo out; echo err >&2; exit 7")
			if code != 7 || stdout != "out\n" || stderr != "err\n" {
				t.Errorf("second login: exit %d, stdout %q, stderr %q; want 7, out, err", code, stdout, stderr)
			}
			if got := e.srv.Stats().MetadataWrites; got != writes {
				t.Errorf("second login wrote metadata %d times", got-writes)
			}
			// gcloud's spelling of the same.
			stdout, stderr, code = e.run(n.Name, "--tunnel-through-iap", "--ssh-key-expire-after", "24h", "--command", "echo via --command; exit 3")
			if code != 3 || stdout != "via --command\n" {
				t.Errorf("--command: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
		})
	}
}

// TestSSHLocale: a login sends LANG and LC_* as OpenSSH's stock
// ssh_config does, from gkessh's environment (deps), not the test
// process's.
func TestSSHLocale(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	e.setenv("LANG", "C.UTF-8")
	e.setenv("LC_GKESSH_TEST", "from gkessh's environment")
	e.setenv("GKESSH_NOT_SENT", "x")
	stdout, stderr, code := e.run(e.node(0).Name, "--", "sh", "-c", "echo $LANG/$LC_GKESSH_TEST/$GKESSH_NOT_SENT")
	if want := "C.UTF-8/from gkessh's environment/\n"; code != 0 || stdout != want {
		t.Fatalf("exit %d, stdout %q, want %q; stderr:\n%s", code, stdout, want, stderr)
	}
}

// TestSSHFailures: each failure gets its message and exit status 255.
func TestSSHFailures(t *testing.T) {
	t.Parallel()
	for _, mode := range sshdModes() {
		t.Run(mode, func(t *testing.T) {
			e := newParallelSSHEnv(t, mode, 4)
			// A first login pins node 0's host keys.
			if _, stderr, code := e.run(e.node(0).Name, "--", "true"); code != 0 {
				t.Fatalf("first login: exit %d:\n%s", code, stderr)
			}
			cases := []struct {
				name  string
				setup func(t *testing.T) string // returns the node to log in to
				args  []string
				want  []string
			}{
				{"changed host key", func(t *testing.T) string {
					n := e.node(0)
					line := knownhosts.HostAlias(n.ID) + " " + string(ssh.MarshalAuthorizedKey(testkey.Public(t)))
					if err := os.WriteFile(e.knownHosts(), []byte(line), 0o600); err != nil {
						t.Fatal(err)
					}
					return n.Name
				}, nil, []string{"REMOTE HOST IDENTIFICATION HAS CHANGED", "CHANGED", e.node(0).Name, "--accept-changed-host-keys"}},
				{"OS Login", func(t *testing.T) string {
					if err := e.srv.SetInstanceMetadata(e.node(1).Name, map[string]*string{"enable-oslogin": new("TRUE")}); err != nil {
						t.Fatal(err)
					}
					return e.node(1).Name
				}, nil, []string{"OS Login is on, so the key goes into a Google account's OS Login profile"}},
				{"missing node", func(*testing.T) string { return "gke-no-such-node" }, nil, []string{"no instance named gke-no-such-node"}},
				{"stopped sshd", func(t *testing.T) string {
					if err := e.node(2).SetSSHD(false); err != nil {
						t.Fatal(err)
					}
					return e.node(2).Name
				}, nil, []string{"could not reach port 22"}},
				{"stopped instance", func(t *testing.T) string {
					if err := e.node(3).SetStatus("TERMINATED"); err != nil {
						t.Fatal(err)
					}
					return e.node(3).Name
				}, nil, []string{"is TERMINATED, not RUNNING", "gcloud compute instances start"}},
				{"propagation timeout", func(*testing.T) string {
					e.srv.SetPropagationDelay(time.Hour)
					return e.node(0).Name
				}, []string{"--user", "bob", "--propagation-timeout", "1s", "--strict-host-key-checking", "no"},
					[]string{"Waiting for SSH key to propagate…", "still refuses key", "guest agent is not running", "OS Login", "block-project-ssh-keys"}},
			}
			for _, tc := range cases {
				t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
					node := tc.setup(t)
					start := time.Now()
					_, stderr, code := e.run(append(tc.args, node, "--", "true")...)
					if code != 255 {
						t.Errorf("exit %d, want 255; stderr:\n%s", code, stderr)
					}
					for _, w := range tc.want {
						if !strings.Contains(stderr, w) {
							t.Errorf("stderr lacks %q:\n%s", w, stderr)
						}
					}
					t.Logf("failed in %v", time.Since(start).Round(time.Millisecond))
				})
			}
		})
	}
}

func TestSSHDryRun(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	n := e.node(0)
	stdout, stderr, code := e.run("--dry-run", n.Name, "--", "id")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"would create key pair", "would pin the 2", `would log in as`, `and run "id"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if s := e.srv.Stats(); s.MetadataWrites != 0 || s.Tunnels != 0 {
		t.Errorf("dry run changed something: %+v", s)
	}
	if _, err := os.Stat(filepath.Join(e.home, ".ssh")); !os.IsNotExist(err) {
		t.Errorf("dry run created ~/.ssh: %v", err)
	}
	// Once the key is in, the dry run says until when, and why a lifetime
	// asked for would rewrite it.
	if _, stderr, code := e.run(n.Name, "--", "true"); code != 0 {
		t.Fatalf("login: exit %d: %s", code, stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "'s key SHA256:"},
		{nil, " is already in project metadata ssh-keys, expiring "},
		{[]string{"--key-expire-after", "30m"}, "would add to project metadata ssh-keys (it is there, but expires "},
		{[]string{"--key-expire-after", "30m"}, `, not about when the lifetime asked for ends): `},
	} {
		if stdout, stderr, code := e.run(append(append([]string{"--dry-run"}, tc.args...), n.Name, "--", "id")...); code != 0 || !strings.Contains(stdout, tc.want) {
			t.Errorf("--dry-run %q: exit %d, stdout lacks %q:\n%s%s", tc.args, code, tc.want, stdout, stderr)
		}
	}
}

func TestSSHUsage(t *testing.T) {
	e := newSSHTestEnv(t, "builtin", 1)
	// gkessh with no NODE is no login: a short usage, exit 2 (TestExitCodes).
	cases := [][]string{
		{"--scope", "zone", "node"},
		{"--user", "al ice", "node"},
		{"--user", "bob", "alice@node"},
		{"--strict-host-key-checking", "maybe", "node"},
		{"--key-expire-after", "soon", "node"},
		{"--port", "0", "node"},
		{"-L", "8080:localhost", "node"},
		{"-R", "[::1:8080:localhost:80", "node"},
		{"-N", "node", "--", "true"},
		{"tunnel", "node", "8080", "--listen", "127.0.0.1:99999"},
		{"node", "--", "-o", "Foo=bar", "uptime"}, // an ssh option gkessh lacks
		{"--command", "uptime", "node", "--", "id"},
		{"--internal-ip", "--tunnel-through-iap", "node"},
		{"--bogus", "node"},
		{"--port", "x", "node"},
		{"tunnel", "--bogus", "node", "22"},
		{"keys", "list", "--bogus"},
		{"tunnel", "node", "0"},
		{"proxy", "node", "http"},
	}
	app := newApp(newDeps(Stdio{}), Stdio{})
	for _, args := range cases {
		// A login's usage errors exit 255, as ssh's do; other commands' 2.
		want := exitUsage
		if hoisted, _ := hoistFlags(app, append([]string{"gkessh"}, args...)); isLogin(app, hoisted) {
			want = 255
		}
		help := "See 'gkessh --help'"
		if len(args) > 0 && (args[0] == "tunnel" || args[0] == "proxy") {
			help = "See 'gkessh " + args[0] + " --help'"
		} else if len(args) > 1 && args[0] == "keys" {
			help = "See 'gkessh keys " + args[1] + " --help'"
		}
		if _, stderr, code := e.run(args...); code != want || !strings.Contains(stderr, help) {
			t.Errorf("gkessh %q: exit %d, stderr %q; want a usage error, exit %d", args, code, stderr, want)
		}
	}
}

// TestSSHForwards: -L carries local connections to an address the node
// dials, -R has the node listen and carries its connections here, and -N
// runs no command until interrupted; a local port in use fails before
// anything is written to metadata.
func TestSSHForwards(t *testing.T) {
	for _, mode := range sshdModes() {
		t.Run(mode, func(t *testing.T) {
			e := newSSHTestEnv(t, mode, 1)
			n := e.node(0)
			echo := testnet.Serve(t, func(c net.Conn) {
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			})
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			if _, stderr, code := e.run("-N", "-L", taken.Addr().String()+":"+echo, n.Name); code != 255 ||
				!strings.Contains(stderr, "address already in use") || e.srv.Stats().MetadataWrites != 0 {
				t.Fatalf("-L on a port in use: exit %d, %d metadata writes, stderr %q", code, e.srv.Stats().MetadataWrites, stderr)
			}
			taken.Close()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stderr testio.Buffer
			exited := make(chan int, 1)
			go func() {
				// gcloud's way: ssh options after "--".
				// -R by name, as users write it: the node listens on its
				// loopback. Port 0 on both sides, each port read from the
				// Forwarding line: a port found free and handed over could
				// be taken by another program before gkessh or the node
				// binds it.
				args := []string{"gkessh", n.Name, "--", "-N", "-L", "127.0.0.1:0:" + echo, "-R", "localhost:0:" + echo}
				exited <- Main(ctx, args, Stdio{In: strings.NewReader(""), Out: io.Discard, Err: &stderr})
			}()
			local := "127.0.0.1:" + forwardedPort(t, &stderr, `Forwarding 127\.0\.0\.1:(\d+) to `+regexp.QuoteMeta(echo+" on "+n.Name)+`\.`)
			remote := "127.0.0.1:" + forwardedPort(t, &stderr, `Forwarding localhost:(\d+) on `+regexp.QuoteMeta(n.Name+" to "+echo)+` here\.`) // the node is this machine
			echoThrough(t, "-L", local, &stderr)
			echoThrough(t, "-L", local, &stderr)
			echoThrough(t, "-R", remote, &stderr)
			cancel()
			select {
			case code := <-exited:
				if code != 0 {
					t.Errorf("-N interrupted: exit %d; stderr %s", code, stderr.String())
				}
			case <-time.After(20 * time.Second): // as TestInterruptExits130: a loaded machine, a real sshd
				t.Fatal("-N did not end when interrupted")
			}
			// gkessh's own -L listener is closed when Main returns; the
			// node's -R listener when its sshd sees the connection end,
			// which it may do a little after.
			if c, err := net.Dial("tcp", local); err == nil {
				c.Close()
				t.Errorf("-L: %s still listens after exit", local)
			}
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				c, err := net.Dial("tcp", remote)
				if err != nil {
					break
				}
				c.Close()
				if time.Now().After(deadline) {
					t.Errorf("-R: %s still listens 30 s after exit", remote)
					break
				}
			}
		})
	}
}

// TestSSHInternalIP: --internal-ip dials the instance's internal IP (made
// loopback here, as a VPN would make it reachable) instead of IAP: no
// tunnel is opened, and the host key is still pinned and checked.
func TestSSHInternalIP(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	n := e.node(0)
	host, port, err := net.SplitHostPort(n.SSHAddr())
	if err != nil {
		t.Fatal(err)
	}
	n.SetNetworkIP(host)
	for i := range 2 {
		stdout, stderr, code := e.run("--internal-ip", "--port", port, n.Name, "--", "echo", "direct")
		if code != 0 || stdout != "direct\n" {
			t.Fatalf("login %d over the internal IP: exit %d, stdout %q, stderr:\n%s", i, code, stdout, stderr)
		}
	}
	if tunnels := e.srv.Stats().Tunnels; tunnels != 0 {
		t.Errorf("%d IAP tunnels opened with --internal-ip", tunnels)
	}
	if b, err := os.ReadFile(e.knownHosts()); err != nil || !strings.Contains(string(b), knownhosts.HostAlias(n.ID)) {
		t.Errorf("host key not pinned under %s: %v\n%s", knownhosts.HostAlias(n.ID), err, b)
	}
	// Something at the address that is no sshd: the failure names it.
	closer := testnet.Serve(t, func(c net.Conn) { c.Close() })
	_, closerPort, _ := net.SplitHostPort(closer)
	if _, stderr, code := e.run("--internal-ip", "--port", closerPort, n.Name, "--", "true"); code != 255 || !strings.Contains(stderr, closer) {
		t.Errorf("--internal-ip to a port that closes: exit %d, stderr lacks %s:\n%s", code, closer, stderr)
	}
}

// forwardedPort waits for gkessh's stderr to show the Forwarding line
// matching re, and returns the port its group captured, which must not be
// 0.
func forwardedPort(t *testing.T, stderr *testio.Buffer, re string) string {
	t.Helper()
	line := regexp.MustCompile(re)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := line.FindStringSubmatch(stderr.String()); m != nil {
			if m[1] == "0" {
				t.Fatalf("forwarding from port 0, not the port bound:\n%s", stderr.String())
			}
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line matching %q in 60 s; stderr:\n%s", re, stderr.String())
		}
	}
}

// echoThrough sends a line to addr, which forwards to an echo server, and
// checks it comes back; it retries the dial while the forward starts.
func echoThrough(t *testing.T, flag, addr string, stderr *testio.Buffer) {
	t.Helper()
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if conn, err = net.Dial("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s never listened: %v; stderr %s", flag, addr, err, stderr.String())
		}
	}
	defer conn.Close()
	io.WriteString(conn, "through the node")
	conn.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(conn); err != nil || string(got) != "through the node" {
		t.Fatalf("through %s %s: %q, %v; stderr %s", flag, addr, got, err, stderr.String())
	}
}

// TestSSHInteractive drives the gkessh binary from a pseudo-terminal, as a
// person would: a shell on a remote terminal of the local size, a resize
// that reaches it, the shell's exit status, and the local terminal back in
// its original mode afterwards.
func TestSSHInteractive(t *testing.T) {
	t.Parallel()
	for _, mode := range sshdModes() {
		t.Run(mode, func(t *testing.T) {
			e := newParallelSSHEnv(t, mode, 1)
			master, tty, err := pty.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer master.Close()
			if err := pty.SetSize(tty, 30, 100); err != nil {
				t.Fatal(err)
			}
			before, err := pty.Termios(master)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(gkesshBinary(t), e.node(0).Name)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
			// A session of its own with the pty as controlling terminal,
			// so the kernel sends it SIGWINCH on resize.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			cmd.Env = append(e.env(), "TERM=xterm")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			tty.Close()
			out := &testio.Buffer{}
			copied := make(chan struct{})
			go func() {
				defer close(copied)
				buf := make([]byte, 4096)
				for {
					n, err := master.Read(buf)
					out.Write(buf[:n])
					if err != nil {
						return
					}
				}
			}()
			// Typed ahead: the line waits in the terminal until the shell
			// reads it. $((…)) shows the shell ran it, not just echoed it.
			send(t, master, "stty size; echo ran-$((6*7))\r")
			out.WaitFor(t, "ran-42", 2*time.Minute)
			if !strings.Contains(out.String(), "30 100") {
				t.Errorf("remote terminal size is not 30x100:\n%s", out.String())
			}
			if err := pty.SetSize(master, 50, 132); err != nil {
				t.Fatal(err)
			}
			// SIGWINCH and window-change are asynchronous: the shell polls
			// until the size changes (or 10 s pass), then reports it in a
			// form the typed line itself does not contain.
			send(t, master, `i=0; while [ "$(stty size)" = "$((15*2)) $((50*2))" ] && [ $i -lt 200 ]; do i=$((i+1)); sleep 0.05; done; echo size-$(stty size | tr ' ' x)`+"\r")
			out.WaitFor(t, "size-50x132", 2*time.Minute)
			send(t, master, "exit 3\r")
			err = cmd.Wait()
			if cmd.ProcessState.ExitCode() != 3 {
				t.Errorf("gkessh exited with %v, want status 3; output:\n%s", err, out.String())
			}
			after, err := pty.Termios(master)
			if err != nil {
				t.Fatal(err)
			}
			if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
				t.Errorf("terminal modes not restored: before %+v, after %+v", before, after)
			}
			master.SetReadDeadline(time.Now())
			<-copied
		})
	}
}

func send(t *testing.T, w *os.File, s string) {
	t.Helper()
	if _, err := w.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// TestSSHTrustOnFirstUse: a node that publishes no host keys is refused
// under --strict-host-key-checking=yes, and trusted on first use (and
// recorded) under the default accept-new.
func TestSSHTrustOnFirstUse(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	n := e.node(0)
	if err := e.srv.SetInstanceMetadata(n.Name, map[string]*string{"enable-guest-attributes": new("FALSE")}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--strict-host-key-checking", "yes"}, 255, "is unknown and its guest published no host keys"},
		{nil, 0, "Permanently added " + knownhosts.HostAlias(n.ID)},
		{[]string{"--strict-host-key-checking", "yes"}, 0, ""},
	}
	for _, tc := range cases {
		_, stderr, code := e.run(append(tc.args, n.Name, "--", "true")...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || (tc.want == "" && strings.Contains(stderr, "Permanently")) {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant exit %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// TestRefusedChangesNothing: when IAP refuses the tunnel (here the firewall
// rule for 35.235.240.0/20 is missing), a login and a ProxyCommand fail
// with 255 before anything changes: no metadata write, no key files.
func TestRefusedChangesNothing(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"login", "proxy"} {
		t.Run(cmd, func(t *testing.T) {
			e := newParallelSSHEnv(t, "builtin", 1)
			n := e.node(0)
			n.SetFirewall(false)
			argv := []string{n.Name, "--", "true"}
			if cmd == "proxy" {
				argv = []string{"proxy", n.Name, "22"}
			}
			_, stderr, code := e.run(argv...)
			if code != 255 || !strings.Contains(stderr, "35.235.240.0/20") {
				t.Errorf("gkessh %q: exit %d, stderr %q; want 255 and the firewall rule", argv, code, stderr)
			}
			if w := e.srv.Stats().MetadataWrites; w != 0 {
				t.Errorf("%d metadata writes after a refused tunnel", w)
			}
			if _, err := os.Stat(filepath.Join(e.home, ".ssh", "google_compute_engine")); err == nil {
				t.Error("a key file was created for a refused tunnel")
			}
		})
	}
}
