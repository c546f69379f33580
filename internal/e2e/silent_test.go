//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
)

// TestSilentRelay: the relay goes silent in the middle of a session (no
// ACK, no data, the TCP connection left open), which no error ever
// reports. ssh through the config block's `gkessh proxy`, and the native
// `gkessh NODE -- cmd`, each notice it from the relay's silence after
// bytes it did not acknowledge, resume on a new websocket and finish the
// session with every byte, instead of hanging. gkessh's bound on that
// silence, 30 s, is 2 s here (GKESSH_TEST_ACK_TIMEOUT, test builds only);
// without it both die on keepalives after 90 s with nothing echoed.
func TestSilentRelay(t *testing.T) {
	w, user, cfg := configuredNode(t)
	node := w.nodes()[0].Name
	w.env = append(w.env, "GKESSH_TEST_ACK_TIMEOUT=2s")
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

// TestLazyAcksIdleSession: through a relay that acknowledges small sends
// only once 32 KiB are owed or after a long idle (Faults.AckIdle: IAP's
// cadence for small sends is not documented), an interactive session that
// sits idle for 30 minutes with a keystroke every 3 minutes neither
// reconnects after each keystroke nor stalls. The clock is scaled 120
// times: gkessh's 30 s bound on a silent relay is 250 ms
// (GKESSH_TEST_ACK_TIMEOUT, test builds only), the relay's idle before it
// acknowledges, 2 minutes, is 1 s, and a keystroke comes every 1.5 s for
// 15 s. ssh through the config block's gkessh proxy and the native gkessh
// NODE -- cat each echo every line at once; both sessions keep their first
// websocket.
func TestLazyAcksIdleSession(t *testing.T) {
	w, user, cfg := configuredNode(t)
	node := w.nodes()[0].Name
	w.env = append(w.env, "GKESSH_TEST_ACK_TIMEOUT=250ms")
	w.output("ssh", "-F", cfg, node, "true")
	w.output("gkessh", user+"@"+node, "--", "true")

	start := time.Now()
	w.control("POST", "/control/faults", map[string]any{"ackIdle": "1s"}, nil)
	before := w.stats().Tunnels
	const keystrokes = 10
	clients := map[string]*exec.Cmd{
		"ssh":    w.command("ssh", "-F", cfg, node, "cat"),
		"gkessh": w.command("gkessh", user+"@"+node, "--", "cat"),
	}
	var wg sync.WaitGroup
	for name, cmd := range clients {
		wg.Go(func() {
			stdin, stdout, stderr := startPiped(t, cmd)
			lines := make(chan string)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			defer func() {
				stdin.Close()
				cmd.Wait()
			}()
			for i := range keystrokes {
				time.Sleep(1500 * time.Millisecond)
				want := fmt.Sprintf("keystroke %d", i)
				fmt.Fprintln(stdin, want)
				select {
				case got := <-lines:
					if got != want {
						t.Errorf("%s: echoed %q, want %q", name, got, want)
						return
					}
				case <-time.After(30 * time.Second):
					t.Errorf("%s: %q not echoed in 30s: the session stalled; stderr:\n%s", name, want, stderr)
					cmd.Process.Kill()
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("sessions took %v", time.Since(start))
	// Two sessions, one websocket each. The old ACK timer resumed on a new
	// websocket after every keystroke the relay had not yet acknowledged:
	// 22 more for 2 × 10 keystrokes at 60 times. A few are allowed for a
	// machine so loaded that an echo takes 250 ms.
	if n := w.stats().Tunnels - before; n > 2+6 {
		t.Errorf("%d websockets for two idle sessions with %d keystrokes each, want 2 (one each)", n, keystrokes)
	}
}
