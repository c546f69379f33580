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

// readmeMarker precedes each code block TestREADME runs, in README.md and
// in docs/*.md.
const readmeMarker = "<!-- readme-test"

// docFiles returns README.md and the guides in docs/, relative to the
// module root.
func docFiles(t *testing.T) []string {
	t.Helper()
	guides, err := filepath.Glob(filepath.Join(moduleRoot(t), "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"README.md"}
	for _, g := range guides {
		files = append(files, filepath.Join("docs", filepath.Base(g)))
	}
	return files
}

// readmeBlocks returns the code blocks (fenced or indented) that follow a
// readmeMarker line in the file, in order.
func readmeBlocks(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), file))
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
			t.Fatalf("%s line %d: %s is not followed by a code block", file, i, readmeMarker)
		}
		blocks = append(blocks, strings.Join(block, "\n")+"\n")
	}
	return blocks
}

// TestREADME runs the marked code blocks of the README and of each guide
// in docs/ as pasted, against gce-emulator, so they cannot rot. Each file
// gets an emulator and a HOME of its own, and its blocks run in order.
// NODE stands for the emulator's first node. The only help the blocks
// get: ssh reads ~/.ssh from the passwd entry, not $HOME, so a shell
// function points it at the test's HOME.
func TestREADME(t *testing.T) {
	need(t, "ssh", "curl", "bash")
	total := 0
	for _, file := range docFiles(t) {
		blocks := readmeBlocks(t, file)
		total += len(blocks)
		if len(blocks) == 0 {
			continue
		}
		t.Run(file, func(t *testing.T) { runDocBlocks(t, file, blocks) })
	}
	if total < 5 {
		t.Fatalf("%d marked blocks in the README and docs/, want at least the headline, proxy, tunnel, emulator and control API ones", total)
	}
}

// runDocBlocks runs one file's marked blocks against an emulator of
// their own.
func runDocBlocks(t *testing.T, file string, blocks []string) {
	w := startEmulator(t, "--nodes", "1", "--propagation-delay", "100ms")
	node := w.nodes()[0].Name
	if file == "README.md" && !strings.Contains(blocks[0], node) {
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
			t.Fatalf("%s block %d failed: %v\n%s\noutput:\n%s", file, i, err, block, out)
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

// TestDocsKeepSecretsOffCommandLines: no command the README or docs/ show
// puts the control secret on a command line (ps shows every argv to every
// local user), uses a fixed /tmp path (another user can create it first)
// or sets gcloud's token host for good (real credentials would keep going
// to a loopback port after the emulator stops): security review N4, N5,
// N11.
func TestDocsKeepSecretsOffCommandLines(t *testing.T) {
	bad := regexp.MustCompile(`CONTROL_SECRET|Bearer|/tmp/|auth/token_host`)
	for _, doc := range docFiles(t) {
		b, err := os.ReadFile(filepath.Join(moduleRoot(t), doc))
		if err != nil {
			t.Fatal(err)
		}
		fenced := false
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "```") {
				fenced = !fenced
				continue
			}
			if (fenced || strings.HasPrefix(line, "    ")) && bad.MatchString(line) {
				t.Errorf("%s:%d: %s", doc, i+1, line)
			}
		}
	}
}
