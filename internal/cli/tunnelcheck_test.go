//go:build unix

package cli

import (
	"bufio"
	"io"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// TestTunnelGcloudFlags: gkessh tunnel checks the port with one tunnel
// before it listens, as gcloud start-iap-tunnel does, unless
// --iap-tunnel-disable-connection-check; --listen-on-stdin carries stdin
// and stdout instead, and refuses the flags that have no meaning with it.
func TestTunnelGcloudFlags(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	nodeServer(t, e.srv.Node(node), 7, echoLine)
	cases := []struct {
		name    string
		args    []string
		stdin   string
		listens bool   // prints its address and serves until interrupted
		code    int    // else: its exit status
		stdout  string // and its output
		stderr  []string
		tunnels int64 // opened before it listened, or in all
	}{
		{"checked, nothing on the port", []string{"tunnel", node, "8080"}, "", false, exitOther, "", []string{"Testing if tunnel connection works.", "while checking that a tunnel to"}, 1},
		{"unchecked, nothing on the port", []string{"tunnel", node, "8080", "--iap-tunnel-disable-connection-check"}, "", true, 0, "", nil, 0},
		{"checked, a server on the port", []string{"tunnel", node, "7"}, "", true, 0, "", []string{"Testing if tunnel connection works."}, 1},
		{"stdin and stdout", []string{"tunnel", node, "7", "--listen-on-stdin"}, "hello\n", false, 0, "HELLO\n", nil, 1},
		{"stdin and --listen", []string{"tunnel", node, "7", "--listen-on-stdin", "--listen", "127.0.0.1:0"}, "", false, exitUsage, "", []string{"--listen-on-stdin and --listen: give one"}, 0},
		{"stdin and no check", []string{"tunnel", node, "7", "--listen-on-stdin", "--iap-tunnel-disable-connection-check"}, "", false, exitUsage, "", []string{"no connection check to disable"}, 0},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			before := e.srv.Stats().Tunnels
			p := startGkessh(t, tc.args...)
			if _, err := p.stdin.Write([]byte(tc.stdin)); err != nil {
				t.Fatal(err)
			}
			p.stdin.Close()
			var out string
			if tc.listens {
				line, err := bufio.NewReader(p.stdout).ReadString('\n')
				if !strings.HasPrefix(line, "Listening on 127.0.0.1:") {
					t.Fatalf("printed %q, %v; stderr:\n%s", line, err, p.stderr.String())
				}
				if got := e.srv.Stats().Tunnels - before; got != tc.tunnels {
					t.Errorf("%d tunnels before listening, want %d", got, tc.tunnels)
				}
				p.hangUp()
			} else {
				b, _ := io.ReadAll(p.stdout)
				out = string(b)
			}
			code := p.wait(t)
			if code != tc.code || out != tc.stdout {
				t.Errorf("exit %d, stdout %q; want %d, %q; stderr:\n%s", code, out, tc.code, tc.stdout, p.stderr.String())
			}
			for _, w := range tc.stderr {
				if !strings.Contains(p.stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, p.stderr.String())
				}
			}
			if got := e.srv.Stats().Tunnels - before; !tc.listens && got != tc.tunnels {
				t.Errorf("%d tunnels, want %d", got, tc.tunnels)
			}
		})
	}
}
