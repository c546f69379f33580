//go:build unix

package emulator

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/internal/testnet"
)

// sshdModes builds each kind of node SSH server over a fresh state dir.
var sshdModes = []struct {
	name string
	new  func(t testing.TB) nodeSSHD
}{
	{"builtin", func(t testing.TB) nodeSSHD {
		keys, err := newHostKeys()
		if err != nil {
			t.Fatal(err)
		}
		d, err := newBuiltinSSHD(keys, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}},
	{"openssh", func(t testing.TB) nodeSSHD {
		if _, err := os.Stat(SSHDPath); err != nil {
			t.Skipf("no OpenSSH server: %v", err)
		}
		keys, err := newHostKeys()
		if err != nil {
			t.Fatal(err)
		}
		d, err := newOpenSSHD(filepath.Join(t.TempDir(), "node", "sshd"), keys, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}},
}

// loginUser is a user both modes accept: OpenSSH needs a real account.
func loginUser(t testing.TB) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// authorize installs a fresh key for the login user on d, as the guest
// agent would, and returns the user and key.
func authorize(tb testing.TB, d nodeSSHD) (string, ssh.Signer) {
	tb.Helper()
	name, signer := loginUser(tb), testkey.Signer(tb)
	if err := d.SetAuthorized(map[string][]ssh.PublicKey{name: {signer.PublicKey()}}); err != nil {
		tb.Fatal(err)
	}
	return name, signer
}

// dialNode logs in, checking that the server shows one of its host keys.
func dialNode(d nodeSSHD, name string, signer ssh.Signer) (*ssh.Client, error) {
	cfg := &ssh.ClientConfig{
		User: name,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			for _, k := range d.HostKeys() {
				if bytes.Equal(k.Marshal(), key.Marshal()) {
					return nil
				}
			}
			return errors.New("unknown host key")
		},
		Timeout: 5 * time.Second,
	}
	return ssh.Dial("tcp", d.Addr(), cfg)
}

// builtinLogin starts a builtin sshd with a key installed, logs in, and
// returns the server, the user, the key and the client, all closed at the
// test's end.
func builtinLogin(t *testing.T) (nodeSSHD, string, ssh.Signer, *ssh.Client) {
	t.Helper()
	d := sshdModes[0].new(t)
	t.Cleanup(func() { d.Close() })
	name, signer := authorize(t, d)
	c, err := dialNode(d, name, signer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return d, name, signer, c
}

// run runs cmd in a new session and returns stdout, stderr and the status.
func run(t *testing.T, c *ssh.Client, cmd, stdin string) (string, string, int) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var out, errb bytes.Buffer
	sess.Stdout, sess.Stderr, sess.Stdin = &out, &errb, strings.NewReader(stdin)
	status := 0
	if err := sess.Run(cmd); err != nil {
		var ee *ssh.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run %q: %v", cmd, err)
		}
		status = ee.ExitStatus()
	}
	return out.String(), errb.String(), status
}

func TestNodeSSHD(t *testing.T) {
	for _, mode := range sshdModes {
		t.Run(mode.name, func(t *testing.T) {
			d := mode.new(t)
			defer d.Close()
			if got := len(d.HostKeys()); got != 2 {
				t.Fatalf("%d host keys, want ed25519 and ecdsa", got)
			}
			name, signer := loginUser(t), testkey.Signer(t)

			if c, err := dialNode(d, name, signer); err == nil {
				c.Close()
				t.Fatal("login succeeded before the key was installed")
			} else if !strings.Contains(err.Error(), "unable to authenticate") {
				t.Fatalf("login before install: %v, want an authentication failure", err)
			}
			if err := d.SetAuthorized(map[string][]ssh.PublicKey{name: {signer.PublicKey()}}); err != nil {
				t.Fatal(err)
			}
			c, err := dialNode(d, name, signer)
			if err != nil {
				t.Fatalf("login after install: %v", err)
			}
			defer c.Close()

			cases := []struct {
				cmd, stdin, out, errOut string
				status                  int
			}{
				{"echo hello; echo oops >&2; exit 3", "", "hello\n", "oops\n", 3},
				{"tr a-z A-Z", "streamed stdin", "STREAMED STDIN", "", 0},
				{"kill -TERM $$", "", "", "", 128 + 15},
			}
			for _, tc := range cases {
				out, errOut, status := run(t, c, tc.cmd, tc.stdin)
				if out != tc.out || errOut != tc.errOut || status != tc.status {
					t.Errorf("%q: got (%q, %q, %d), want (%q, %q, %d)", tc.cmd, out, errOut, status, tc.out, tc.errOut, tc.status)
				}
			}
			testPTY(t, c)
			testSFTP(t, c)
			testDirectTCPIP(t, c)
			testRemoteForward(t, c)

			// Removing the key locks the user out again.
			if err := d.SetAuthorized(map[string][]ssh.PublicKey{}); err != nil {
				t.Fatal(err)
			}
			if c2, err := dialNode(d, name, signer); err == nil {
				c2.Close()
				t.Error("login succeeded after the key was removed")
			}
		})
	}
}

// testPTY runs a shell on a terminal, resizes it and reads stty's view.
func testPTY(t *testing.T, c *ssh.Client) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.RequestPty("xterm", 40, 100, ssh.TerminalModes{}); err != nil {
		t.Fatalf("pty-req: %v", err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sess.Stdout = &out
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	if err := sess.WindowChange(50, 132); err != nil {
		t.Fatal(err)
	}
	// tty checks stdin is the terminal; stty reports the resized window.
	if _, err := io.WriteString(stdin, "tty >/dev/null && echo is-a-tty; stty size; exit 4\n"); err != nil {
		t.Fatal(err)
	}
	var ee *ssh.ExitError
	if err := sess.Wait(); !errors.As(err, &ee) || ee.ExitStatus() != 4 {
		t.Fatalf("shell ended with %v, want exit status 4", err)
	}
	for _, want := range []string{"is-a-tty", "50 132"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("terminal output %q lacks %q", out.String(), want)
		}
	}
}

// testSFTP checks that the sftp subsystem (scp, rsync over sftp) answers
// the protocol's INIT with its VERSION.
func testSFTP(t *testing.T, c *ssh.Client) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	in, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		t.Fatalf("subsystem sftp: %v", err)
	}
	// uint32 length 5, SSH_FXP_INIT (1), version 3.
	if _, err := in.Write([]byte{0, 0, 0, 5, 1, 0, 0, 0, 3}); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 5)
	if _, err := io.ReadFull(out, reply); err != nil {
		t.Fatalf("sftp: %v", err)
	}
	if reply[4] != 2 { // SSH_FXP_VERSION
		t.Errorf("sftp answered packet type %d, want VERSION (2)", reply[4])
	}
}

func TestNodeSSHDStopStart(t *testing.T) {
	for _, mode := range sshdModes {
		t.Run(mode.name, func(t *testing.T) {
			d := mode.new(t)
			defer d.Close()
			name, signer := authorize(t, d)
			addr := d.Addr()
			// An open session is ended by Stop, not left running.
			c, err := dialNode(d, name, signer)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sess, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := sess.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := sess.Start("echo started; exec sleep 60"); err != nil {
				t.Fatal(err)
			}
			// Stop only once the shell is past its rc files: one killed in
			// the middle of them can leave their locks behind (pyenv's
			// rehash lock did, and every later shell waited 60 s on it).
			if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "started\n" {
				t.Fatalf("remote command did not start: %q %v", line, err)
			}
			start := time.Now()
			if err := d.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := sess.Wait(); err == nil {
				t.Error("session survived Stop")
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Stop took %v", took)
			}
			if d.Addr() != "" {
				t.Errorf("Addr() = %q while stopped", d.Addr())
			}
			if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				conn.Close()
				t.Errorf("%s still accepts connections after Stop", addr)
			}
			if err := d.Start(); err != nil {
				t.Fatal(err)
			}
			if d.Addr() != addr {
				t.Logf("restarted on %s, was %s (port taken)", d.Addr(), addr)
			}
			c2, err := dialNode(d, name, signer)
			if err != nil {
				t.Fatalf("login after restart: %v", err)
			}
			out, _, _ := run(t, c2, "echo back", "")
			c2.Close()
			if out != "back\n" {
				t.Errorf("after restart: %q", out)
			}
		})
	}
}

// testDirectTCPIP forwards a connection as ssh -L does, to an echo server
// on this machine (the node), with a half-close each way.
func testDirectTCPIP(t *testing.T, c *ssh.Client) {
	t.Helper()
	echo := testnet.Serve(t, func(conn net.Conn) {
		io.Copy(conn, conn)
		conn.(*net.TCPConn).CloseWrite()
	})
	conn, err := c.Dial("tcp", echo)
	if err != nil {
		t.Fatalf("direct-tcpip to %s: %v", echo, err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "through the node"); err != nil {
		t.Fatal(err)
	}
	conn.(interface{ CloseWrite() error }).CloseWrite()
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != "through the node" {
		t.Errorf("echo through direct-tcpip: %q, %v", got, err)
	}
	if _, err := c.Dial("tcp", "127.0.0.1:1"); err == nil {
		t.Error("direct-tcpip to a closed port succeeded")
	}
}

// testRemoteForward has the node listen for the client, as ssh -R does,
// and echoes what comes through it back.
func testRemoteForward(t *testing.T, c *ssh.Client) {
	t.Helper()
	ln, err := c.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("tcpip-forward: %v", err)
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				io.Copy(conn, conn)
			}()
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial the node's forwarded port %s: %v", ln.Addr(), err)
	}
	defer conn.Close()
	io.WriteString(conn, "back from the client")
	conn.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(conn); err != nil || string(got) != "back from the client" {
		t.Errorf("echo through tcpip-forward: %q, %v", got, err)
	}
	ln.Close()
	if conn, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		conn.Close()
		t.Errorf("node still listens on %s after cancel-tcpip-forward", ln.Addr())
	}
}

func TestOpenSSHDCleanup(t *testing.T) {
	if _, err := os.Stat(SSHDPath); err != nil {
		t.Skipf("no OpenSSH server: %v", err)
	}
	keys, err := newHostKeys()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "sshd")
	d, err := newOpenSSHD(dir, keys, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	// A connection starts an sshd -i: read its version line so that it runs.
	conn, err := net.Dial("tcp", d.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if line, err := bufio.NewReader(conn).ReadString('\n'); !strings.HasPrefix(line, "SSH-2.0-") {
		t.Fatalf("sshd said %q, %v", line, err)
	}
	d.mu.Lock()
	pids := slices.Collect(maps.Keys(d.sessions))
	d.mu.Unlock()
	if len(pids) != 1 {
		t.Fatalf("sshd processes %v, want one", pids)
	}
	pid := pids[0]
	for _, f := range []string{"ssh_host_ed25519_key", "ssh_host_ecdsa_key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	users := map[string][]ssh.PublicKey{"alice": {testkey.Signer(t).PublicKey()}, "bob": {testkey.Signer(t).PublicKey()}}
	if err := d.SetAuthorized(users); err != nil {
		t.Fatal(err)
	}
	delete(users, "bob")
	if err := d.SetAuthorized(users); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "authorized_keys"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "alice" {
		t.Errorf("authorized_keys holds %v, want only alice", entries)
	}
	if err := d.SetAuthorized(map[string][]ssh.PublicKey{"../x": nil}); err == nil {
		t.Error("user name ../x accepted")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waited for sshd, so its pid is free: signal 0 finds nobody.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("sshd pid %d still exists after Close: kill -0 says %v", pid, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left behind: %v", dir, err)
	}
}

// BenchmarkNodeSSHDThroughput streams data through an exec session in each
// direction, straight over loopback (no tunnel).
func BenchmarkNodeSSHDThroughput(b *testing.B) {
	const size = 64 << 20
	for _, mode := range sshdModes {
		for _, dir := range []struct{ name, cmd string }{
			{"upload", "cat >/dev/null"},
			{"download", fmt.Sprintf("head -c %d /dev/zero", size)},
		} {
			b.Run(mode.name+"/"+dir.name, func(b *testing.B) {
				d := mode.new(b)
				defer d.Close()
				name, signer := authorize(b, d)
				c, err := dialNode(d, name, signer)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				b.SetBytes(size)
				for i := 0; i < b.N; i++ {
					sess, err := c.NewSession()
					if err != nil {
						b.Fatal(err)
					}
					sess.Stdout = io.Discard
					if dir.name == "upload" {
						sess.Stdin = io.LimitReader(zeros{}, size)
					}
					if err := sess.Run(dir.cmd); err != nil {
						b.Fatal(err)
					}
					sess.Close()
				}
			})
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// A command that exits at once must not close its channel before the
// client has the reply to exec, or the client sees EOF. Builtin only: the
// race was in its code, and OpenSSH takes ~100 ms a session.
func TestNodeSSHDQuickExit(t *testing.T) {
	_, _, _, c := builtinLogin(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				sess, err := c.NewSession()
				if err != nil {
					t.Error(err)
					return
				}
				err = sess.Run("exit 3")
				sess.Close()
				var ee *ssh.ExitError
				if !errors.As(err, &ee) || ee.ExitStatus() != 3 {
					t.Errorf("run \"exit 3\": %v, want exit status 3", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestBuiltinSSHDPipe logs in over the socket pair the relay uses, and
// checks that a stopped server refuses it and Stop drops it, as over TCP.
func TestBuiltinSSHDPipe(t *testing.T) {
	d := sshdModes[0].new(t).(*builtinSSHD)
	defer d.Close()
	name, signer := authorize(t, d)
	nc, err := d.pipe()
	if err != nil {
		t.Fatal(err)
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, "node", &ssh.ClientConfig{
		User: name, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		t.Fatalf("login over the pipe: %v", err)
	}
	c := ssh.NewClient(sc, chans, reqs)
	defer c.Close()
	if out, _, status := run(t, c, "echo over the pipe", ""); out != "over the pipe\n" || status != 0 {
		t.Errorf("got %q, status %d", out, status)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err == nil {
		t.Error("the connection outlived Stop")
	}
	if nc, err := d.pipe(); !errors.Is(err, syscall.ECONNREFUSED) {
		if nc != nil {
			nc.Close()
		}
		t.Errorf("pipe to a stopped server: %v, want connection refused", err)
	}
}
