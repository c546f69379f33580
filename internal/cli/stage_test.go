//go:build unix

package cli

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/keys"
)

// pipeConn is ssh's side of a ProxyCommand: it writes the proxy's stdin
// and reads its stdout. os.Pipe buffers, unlike net.Pipe.
type pipeConn struct {
	*proxyRun
}

func (c pipeConn) Read(b []byte) (int, error)       { return c.stdout.Read(b) }
func (c pipeConn) Write(b []byte) (int, error)      { return c.stdin.Write(b) }
func (c pipeConn) Close() error                     { c.stdin.Close(); return c.stdout.Close() }
func (c pipeConn) LocalAddr() net.Addr              { return &net.UnixAddr{Name: "stdio"} }
func (c pipeConn) RemoteAddr() net.Addr             { return &net.UnixAddr{Name: "stdio"} }
func (c pipeConn) SetDeadline(time.Time) error      { return nil }
func (c pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (c pipeConn) SetWriteDeadline(time.Time) error { return nil }

// loginThroughProxy runs one `gkessh proxy` for port 22 and logs in over
// its stdio as user with the key in HOME, the way ssh would.
func loginThroughProxy(t *testing.T, e *testEnv, user, node string, args ...string) (stderr string, err error) {
	t.Helper()
	p := startProxy(t, append(append([]string{"--user", user}, args...), node)...)
	var signer ssh.Signer
	// The proxy creates the key before it passes a byte, so it exists by
	// the time the server's banner arrives; load it lazily.
	auth := ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
		kp, err := keys.Load(filepath.Join(e.home, ".ssh", "google_compute_engine"))
		if err != nil {
			return nil, err
		}
		signer = kp.Signer
		return []ssh.Signer{signer}, nil
	})
	cfg := &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{auth}, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}
	conn, chans, reqs, err := ssh.NewClientConn(pipeConn{p}, node+":22", cfg)
	if err != nil {
		pipeConn{p}.Close()
		p.hangUp()
		p.wait(t)
		return p.stderr.String(), err
	}
	client := ssh.NewClient(conn, chans, reqs)
	out, err := client.NewSession()
	if err == nil {
		var b []byte
		b, err = out.Output("echo staged")
		if err == nil && strings.TrimSpace(string(b)) != "staged" {
			t.Errorf("command output %q", b)
		}
	}
	client.Close()
	p.hangUp()
	if code := p.wait(t); code != 0 {
		t.Errorf("proxy exit %d: %s", code, p.stderr.String())
	}
	return p.stderr.String(), err
}

func TestProxyStagesKey(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 2, PropagationDelay: 300 * time.Millisecond})
	nodes := e.srv.Nodes()

	// Cold: the proxy creates the key, writes it once, waits for the
	// node to install it, and only then hands the stream over.
	stderr, err := loginThroughProxy(t, e, "nat", nodes[0])
	if err != nil {
		t.Fatalf("first login: %v\n%s", err, stderr)
	}
	for _, want := range []string{"Generated SSH key", "Added nat's key to project metadata", "accepts the key"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if w := e.srv.Stats().MetadataWrites; w != 1 {
		t.Fatalf("%d metadata writes, want 1", w)
	}

	// Warm: same node again, no API call at all.
	before := e.srv.Stats()
	if stderr, err := loginThroughProxy(t, e, "nat", nodes[0]); err != nil || stderr != "" {
		t.Fatalf("warm login: %v, stderr %q", err, stderr)
	}
	if after := e.srv.Stats(); after.APICalls != before.APICalls {
		t.Fatalf("warm proxy made %d API calls", after.APICalls-before.APICalls)
	}

	// Another node: the key is already in project metadata, so no write.
	if _, err := loginThroughProxy(t, e, "nat", nodes[1]); err != nil {
		t.Fatal(err)
	}
	if w := e.srv.Stats().MetadataWrites; w != 1 {
		t.Fatalf("%d metadata writes after the second node, want 1", w)
	}

	// --no-ensure-key leaves metadata alone: a new user is refused.
	if _, err := loginThroughProxy(t, e, "bob", nodes[0], "--no-ensure-key"); err == nil {
		t.Fatal("bob logged in without a staged key")
	}
	if w := e.srv.Stats().MetadataWrites; w != 1 {
		t.Fatalf("--no-ensure-key wrote metadata")
	}
}

func TestProxyStagingFailsClearly(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 1, PropagationDelay: time.Hour})
	node := e.srv.Nodes()[0]
	p := startProxy(t, "--user", "nat", "--propagation-timeout", "500ms", node)
	if code := p.wait(t); code != 255 {
		t.Fatalf("exit %d, want 255", code)
	}
	stderr := p.stderr.String()
	if !strings.Contains(stderr, "still refuses key") || bytes.Count([]byte(stderr), []byte("gkessh:")) != 1 {
		t.Fatalf("stderr: %q", stderr)
	}
}

// TestProxyUnwritableCache: a cache directory that cannot be made (here a
// regular file stands where it should be, which stops root too) costs the
// shortcut, not the connection: the proxy warns once and carries on.
func TestProxyUnwritableCache(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 1})
	blocker := filepath.Join(e.home, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", blocker)
	node := e.srv.Nodes()[0]
	for i := range 2 {
		stderr, err := loginThroughProxy(t, e, "nat", node)
		if err != nil {
			t.Fatalf("login %d: %v\n%s", i, err, stderr)
		}
		if n := strings.Count(stderr, "carrying on without the cache"); n != 1 {
			t.Errorf("login %d: %d warnings, want 1:\n%s", i, n, stderr)
		}
	}
}
