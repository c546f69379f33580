//go:build unix

package e2e

import (
	"bufio"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProxyHangupReleasesRelay: ssh sends its ProxyCommand SIGHUP when it
// exits. The proxy must close its websocket on the way out, so the relay
// frees the session (websocket and backend connection) at once instead of
// holding it for a reconnect; the relay's open fds show it.
func TestProxyHangupReleasesRelay(t *testing.T) {
	// ssh's ProxyCommand does not start with SIGHUP ignored, but under nohup
	// this test would be, and the proxy rightly keeps an inherited ignore.
	// While the test catches SIGHUP, the processes it starts get the default.
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, syscall.SIGHUP)
	defer signal.Stop(caught)
	w := startEmulator(t, "--nodes", "1")
	node := w.nodes()[0].Name
	fds := func() int {
		t.Helper()
		ents, err := os.ReadDir("/proc/" + strconv.Itoa(w.pid) + "/fd")
		if err != nil {
			t.Skipf("cannot count the emulator's fds: %v", err)
		}
		return len(ents)
	}
	before := fds()
	const sessions = 20
	for i := range sessions {
		cmd := w.command("gkessh", "proxy", "--no-ensure-key", node, "22")
		stdin, stdout, stderr := startPiped(t, cmd)
		// The server's banner means the tunnel is up end to end.
		banner, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || !strings.HasPrefix(banner, "SSH-2.0-") {
			t.Fatalf("session %d: banner %q, %v; stderr %s", i, banner, err, stderr)
		}
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		// Its status does not matter, its websocket does; a proxy still
		// running a minute after the hangup is a failure, shown with its
		// goroutines (SIGQUIT).
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(time.Minute):
			cmd.Process.Signal(syscall.SIGQUIT)
			<-exited
			t.Fatalf("session %d: the proxy was still running a minute after SIGHUP; its stderr:\n%s", i, stderr)
		}
		stdin.Close()
	}
	// A session the client just dropped would be kept 30 s for a
	// reconnect; a closed one goes at once. 10 s tells them apart.
	deadline := time.Now().Add(10 * time.Second)
	for n := fds(); n > before+2; n = fds() {
		if time.Now().After(deadline) {
			t.Fatalf("the relay holds %d fds after %d hung-up sessions, %d before", n, sessions, before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
