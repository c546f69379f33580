//go:build unix

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/emutest"
	"github.com/gkessh/gkessh/internal/testbin"
	"github.com/gkessh/gkessh/internal/testkey"
)

// sshEnv is a node with the given kind of sshd behind the in-process
// relay, a key it accepts for the login user, its host keys pinned, and the
// environment that points gkessh at the emulator.
type sshEnv struct {
	srv     *emulator.Server
	node    *emulator.Node
	env     []string // for gkessh and ssh: endpoints, token, cache
	gkessh  string   // built binary
	sshArgs []string // ssh options every path shares
	home    string
}

func newSSHEnv(tb testing.TB, sshd string) *sshEnv {
	tb.Helper()
	need(tb, "ssh", "sshd", "go")
	dir := tb.TempDir()
	e := &sshEnv{home: dir, gkessh: testbin.Path(tb, "gkessh")}
	srv, url := emutest.Serve(tb, emulator.Config{Nodes: 1, SSHD: sshd})
	e.srv, e.node = srv, srv.Node(srv.Nodes()[0])

	u, err := user.Current()
	if err != nil {
		tb.Fatal(err)
	}
	keyFile, sshPub := testkey.WritePair(tb, dir)
	line := u.Username + ":" + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + u.Username
	if err := srv.SetProjectMetadata(map[string]*string{"ssh-keys": &line}); err != nil {
		tb.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(e.node.InstalledKeys()[u.Username]) == 0; {
		if time.Now().After(deadline) {
			tb.Fatal("guest agent did not install the key")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var kh strings.Builder
	for _, k := range e.node.HostKeys() {
		fmt.Fprintf(&kh, "%s %s", e.node.Name, ssh.MarshalAuthorizedKey(k))
	}
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(kh.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	e.sshArgs = []string{"-F", "/dev/null", "-i", keyFile, "-l", u.Username,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
		"-o", "UserKnownHostsFile=" + knownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "HostKeyAlias=" + e.node.Name}

	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(srv.Token()), 0o600); err != nil {
		tb.Fatal(err)
	}
	base := strings.TrimPrefix(url, "http://")
	e.env = append(os.Environ(),
		"HOME="+dir, "XDG_CACHE_HOME="+filepath.Join(dir, "cache"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"GKESSH_COMPUTE_ENDPOINT=http://"+base+"/compute/v1/", "GKESSH_IAP_ENDPOINT=ws://"+base,
		"GKESSH_ACCESS_TOKEN_FILE="+tokenFile, "CLOUDSDK_CORE_PROJECT="+srv.ProjectName())
	return e
}

// proxyArgs are the ssh arguments that reach the node through gkessh proxy.
func (e *sshEnv) proxyArgs() []string {
	return []string{"-o", "ProxyCommand=" + e.gkessh + " proxy %h %p", e.node.Name}
}

// roundTrip sends n pseudo-random bytes through `ssh NODE cat` and checks
// that the same come back.
func (e *sshEnv) roundTrip(t *testing.T, n int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", slices.Concat(e.sshArgs, e.proxyArgs(), []string{"cat"})...)
	cmd.Env = e.env
	sent, got := sha256.New(), sha256.New()
	src := io.LimitReader(mrand.NewChaCha8([32]byte{1}), n)
	cmd.Stdin = io.TeeReader(src, sent)
	var received countWriter
	cmd.Stdout = io.MultiWriter(got, &received)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ssh cat: %v after %d bytes back; stderr %s", err, received, stderr.String())
	}
	if received != countWriter(n) || !bytes.Equal(sent.Sum(nil), got.Sum(nil)) {
		t.Fatalf("sent %d bytes with sha256 %s, got back %d with %s", n,
			hex.EncodeToString(sent.Sum(nil)), received, hex.EncodeToString(got.Sum(nil)))
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// TestSSHThroughProxy runs real OpenSSH with `ProxyCommand gkessh proxy %h
// %p` against both kinds of node sshd: a command, a 64 MiB round trip, and
// with every websocket dropped after 8 MiB, 200 MiB each way.
func TestSSHThroughProxy(t *testing.T) {
	for _, mode := range []string{"builtin", "openssh"} {
		t.Run(mode, func(t *testing.T) {
			e := newSSHEnv(t, mode)
			cmd := exec.Command("ssh", slices.Concat(e.sshArgs, e.proxyArgs(), []string{"true"})...)
			cmd.Env = e.env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("ssh true: %v: %s", err, out)
			}
			e.roundTrip(t, 64<<20)
			if mode != "openssh" {
				return
			}
			e.srv.SetFaults(emulator.Faults{DropAfterBytes: 8 << 20})
			before := e.srv.Stats().Tunnels
			e.roundTrip(t, 200<<20)
			// Bursts make each websocket carry a little more than 8 MiB.
			if n := e.srv.Stats().Tunnels - before; n < 25 {
				t.Errorf("%d websockets for 400 MiB dropped every 8 MiB, want at least 25", n)
			}
		})
	}
}
