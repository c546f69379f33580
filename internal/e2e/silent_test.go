//go:build unix

package e2e

import (
	"bytes"
	"crypto/rand"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
)

// TestSilentRelay: the relay goes silent in the middle of a session (no
// ACK, no data, the TCP connection left open), which no error ever
// reports. ssh through the config block's `gkessh proxy`, and the native
// `gkessh NODE -- cmd`, each notice it from the missing ACKs, resume on a
// new websocket and finish the session with every byte, instead of
// hanging. The bound only separates that from a hang: the ACK timeout is
// 30 s, OpenSSH's and the native client's keepalives give up after 90 s.
func TestSilentRelay(t *testing.T) {
	w, user, cfg := configuredNode(t)
	node := w.nodes()[0].Name
	// Key staged, caches filled, before the relay misbehaves.
	w.output("ssh", "-F", cfg, node, "true")
	w.output("gkessh", user+"@"+node, "--", "true")

	// Past the SSH handshake, inside the payload echoed back.
	w.control("POST", "/control/faults", emulator.Faults{SilentAfterBytes: 256 << 10}, nil)
	before := w.stats().Tunnels
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	clients := map[string]*exec.Cmd{
		"ssh":    w.command("ssh", "-F", cfg, node, "cat"),
		"gkessh": w.command("gkessh", user+"@"+node, "--", "cat"),
	}
	var wg sync.WaitGroup
	for name, cmd := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd.Stdin = bytes.NewReader(payload)
			var out, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &stderr
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil || !bytes.Equal(out.Bytes(), payload) {
					t.Errorf("%s: %v; %d of %d bytes back; stderr:\n%s", name, err, out.Len(), len(payload), stderr.String())
				}
			case <-time.After(4 * time.Minute):
				cmd.Process.Kill()
				<-done
				t.Errorf("%s still running 4 minutes after the relay went silent; stderr:\n%s", name, stderr.String())
			}
		}()
	}
	wg.Wait()
	// Each client's first websocket went silent, and each resumed on another.
	if n := w.stats().Tunnels - before; n < 4 {
		t.Errorf("%d websockets for two sessions through a relay gone silent, want at least 4", n)
	}
}
