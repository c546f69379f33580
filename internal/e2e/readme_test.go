//go:build unix

package e2e

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/testnet"
)

// readmeMarker precedes each README code block TestREADME runs.
const readmeMarker = "<!-- readme-test"

// readmeBlocks returns the code blocks (fenced or indented) that follow a
// readmeMarker line in the README, in order.
func readmeBlocks(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var blocks []string
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], readmeMarker) {
			continue
		}
		i++
		for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
			i++
		}
		var block []string
		if i < len(lines) && strings.HasPrefix(lines[i], "```") {
			for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
				block = append(block, lines[i])
			}
		} else {
			for ; i < len(lines) && strings.HasPrefix(lines[i], "    "); i++ {
				block = append(block, strings.TrimPrefix(lines[i], "    "))
			}
		}
		if len(block) == 0 {
			t.Fatalf("README line %d: %s is not followed by a code block", i, readmeMarker)
		}
		blocks = append(blocks, strings.Join(block, "\n")+"\n")
	}
	return blocks
}

// TestREADME runs the README's marked code blocks (the OpenSSH, proxy,
// tunnel, emulator and control API ones) as pasted, against gce-emulator,
// so they cannot rot. NODE stands for the README's node. The only help the
// blocks get: ssh reads ~/.ssh from the passwd entry, not $HOME, so a
// shell function points it at the test's HOME.
func TestREADME(t *testing.T) {
	need(t, "ssh", "curl", "bash")
	blocks := readmeBlocks(t)
	if len(blocks) < 5 {
		t.Fatalf("%d marked README blocks, want the headline, proxy, tunnel, emulator and control API ones", len(blocks))
	}
	w := startEmulator(t, "--nodes", "1", "--propagation-delay", "100ms")
	node := w.nodes()[0].Name
	if !strings.Contains(blocks[0], node) {
		t.Fatalf("the headline block does not use the emulator's first node %s:\n%s", node, blocks[0])
	}
	sshConfig := filepath.Join(w.home, "ssh_config")
	cfg := "Include " + filepath.Join(w.home, ".ssh", "config") + "\nHost *\n  UserKnownHostsFile " + filepath.Join(w.home, ".ssh", "known_hosts") + "\n"
	if err := os.WriteFile(sshConfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	prelude := "set -euo pipefail\nssh() { command ssh -F " + sshConfig + " \"$@\"; }\n"
	nodeWord := regexp.MustCompile(`\bNODE\b`)
	for i, block := range blocks {
		block = nodeWord.ReplaceAllString(block, node)
		t.Logf("block %d:\n%s", i, block)
		if strings.Contains(block, "gkessh tunnel ") {
			runTunnelBlock(t, w, prelude, block)
			continue
		}
		cmd := w.command("bash", "-c", prelude+block)
		if strings.Contains(block, "gce-emulator --background") {
			// A second emulator of the block's own, in a HOME of its own.
			home := t.TempDir()
			cmd.Env = append(cmd.Env, "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
		}
		cmd.WaitDelay = 10 * time.Second
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README block %d failed: %v\n%s\noutput:\n%s", i, err, block, out)
		}
	}
}

// runTunnelBlock runs a block that starts `gkessh tunnel`, which serves
// until interrupted: the other lines run first, the tunnel is started and
// a connection checked through it, then it is interrupted. The node's
// port goes to an echo server of the test's, and the tunnel listens on a
// port of the system's choosing (no fixed ports in tests).
func runTunnelBlock(t *testing.T, w *world, prelude, block string) {
	echo := testnet.Serve(t, func(c net.Conn) {
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	})
	block = strings.ReplaceAll(block, "127.0.0.1:9000", echo)
	block = regexp.MustCompile(`--listen 127\.0\.0\.1:\d+`).ReplaceAllString(block, "--listen 127.0.0.1:0")
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		if !strings.HasPrefix(line, "gkessh tunnel ") {
			if out, err := w.command("bash", "-c", prelude+line).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", line, err, out)
			}
			continue
		}
		cmd := w.command("bash", "-c", prelude+"exec "+line)
		stdin, stdout, stderr := startPiped(t, cmd)
		defer stdin.Close()
		first, err := bufio.NewReader(stdout).ReadString('\n')
		f := strings.Fields(first)
		if err != nil || len(f) < 3 {
			t.Fatalf("%s: printed %q, %v; stderr:\n%s", line, first, err, stderr)
		}
		c, err := net.Dial("tcp", strings.TrimSuffix(f[2], ","))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("through the tunnel\n"))
		got, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if got != "through the tunnel\n" {
			t.Errorf("through %s: got %q, %v; stderr:\n%s", f[2], got, err, stderr)
		}
		cmd.Process.Signal(syscall.SIGINT)
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s: after Ctrl-C: %v; stderr:\n%s", line, err, stderr)
		}
	}
}
