//go:build unix

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/testbin"
	"github.com/gkessh/gkessh/internal/testnet"
)

// The rules every code block in README.md and docs/*.md follows, so that
// none can rot unseen:
//   - it is fenced, with an info string (an indented block is refused);
//   - an `sh` block holds commands, and TestREADME runs it against
//     gce-emulator, unless the line before it is a visible note saying
//     why it cannot run here: *Not run by the tests: REASON.*
//   - a `text`, `json` or `ssh-config` block shows output or a file, and
//     holds no command line;
//   - a block in any other language (a shell the tests do not have) needs
//     the note too.
//
// A line of an sh block whose comment says "exit status N" must exit N,
// and the block carries on.
//
// wantNotRun counts the blocks with a note, so that a new one is a
// decision made in this file, not one that slips by.
const wantNotRun = 8

// notRunNote is the visible note before a block the tests do not run.
var notRunNote = regexp.MustCompile(`^\*Not run by the tests: (.+)\*$`)

// outputInfo names the blocks that show output or a file's content.
var outputInfo = map[string]bool{"text": true, "json": true, "ssh-config": true}

// commandLine is a line an output block must not hold: a prompt, or a
// command a reader would paste.
var commandLine = regexp.MustCompile(`^(\$ |(gkessh|gce-emulator|ssh|scp|rsync|sftp|ansible|ansible-inventory|ansible-playbook|curl|make|eval|export|kill|gcloud|go|git|printf|chmod|source|cd)( |$))`)

// docBlock is a fenced code block of README.md or a guide in docs/.
type docBlock struct {
	file   string
	line   int    // the opening fence's, from 1
	info   string // the fence's info string
	notRun string // the reason its note gives, when it has one
	text   string
}

func (b docBlock) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

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

// TestREADMEShort: the README stays at most 250 lines; guides
// go in docs/.
func TestREADMEShort(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n > 250 {
		t.Errorf("README.md has %d lines, want at most 250: move the detail into docs/", n)
	}
}

// docBlocks returns file's fenced code blocks, failing the test on a block
// that breaks the rules above.
func docBlocks(t *testing.T, file string) []docBlock {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), file))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var blocks []docBlock
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if indentedCode(lines, i) {
			t.Errorf("%s:%d: an indented code block: fence it, with an info string (sh, text, json, ssh-config)", file, i+1)
			for i+1 < len(lines) && (strings.HasPrefix(lines[i+1], "    ") || strings.TrimSpace(lines[i+1]) == "") {
				i++
			}
			continue
		}
		if !strings.HasPrefix(line, "```") {
			continue
		}
		blk := docBlock{file: file, line: i + 1, info: strings.TrimSpace(strings.TrimPrefix(line, "```"))}
		if p := prevNonBlank(lines, i); p >= 0 {
			if m := notRunNote.FindStringSubmatch(lines[p]); m != nil {
				blk.notRun = m[1]
			}
		}
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			t.Errorf("%s: the block opened at line %d is not closed", file, blk.line)
		}
		blk.text = strings.Join(body, "\n") + "\n"
		switch {
		case blk.info == "":
			t.Errorf("%s: no info string: say sh (commands the tests run), text, json or ssh-config", blk)
		case outputInfo[blk.info]:
			if blk.notRun != "" {
				t.Errorf("%s: a %s block shows output, which is never run: drop the note", blk, blk.info)
			}
			for j, l := range body {
				if commandLine.MatchString(l) {
					t.Errorf("%s:%d: a command in a %s block, where the tests do not run it: %q", file, blk.line+1+j, blk.info, l)
				}
			}
		case blk.info != "sh" && blk.notRun == "":
			t.Errorf("%s: a %s block the tests cannot run needs the note *Not run by the tests: why.* before it", blk, blk.info)
		}
		blocks = append(blocks, blk)
	}
	return blocks
}

// indentedCode reports whether lines[i] starts an indented code block:
// four spaces after a blank line that follows a paragraph at the margin
// (not a list item, whose continuation lines are indented).
func indentedCode(lines []string, i int) bool {
	if i == 0 || !strings.HasPrefix(lines[i], "    ") || strings.TrimSpace(lines[i]) == "" || strings.TrimSpace(lines[i-1]) != "" {
		return false
	}
	p := prevNonBlank(lines, i)
	if p < 0 {
		return true
	}
	prev := lines[p]
	return !strings.HasPrefix(prev, " ") && !strings.HasPrefix(prev, "```") && !listItem.MatchString(prev)
}

var listItem = regexp.MustCompile(`^([-*+]|\d+\.) `)

// prevNonBlank is the index of the last non-blank line before i, or -1.
func prevNonBlank(lines []string, i int) int {
	for i--; i >= 0 && strings.TrimSpace(lines[i]) == ""; i-- {
	}
	return i
}

// TestDocBlocks checks the rules above on every file, without running
// anything, and counts the blocks left unrun.
func TestDocBlocks(t *testing.T) {
	var notRun []string
	run := 0
	for _, file := range docFiles(t) {
		for _, b := range docBlocks(t, file) {
			switch {
			case b.notRun != "":
				notRun = append(notRun, fmt.Sprintf("%s: %s", b, b.notRun))
			case b.info == "sh":
				run++
			}
		}
	}
	t.Logf("%d sh blocks run by TestREADME, %d not run:\n%s", run, len(notRun), strings.Join(notRun, "\n"))
	if len(notRun) != wantNotRun {
		t.Errorf("%d blocks are marked not run, want %d (wantNotRun): a new one needs a reason the tests cannot run it, and this count raised:\n%s",
			len(notRun), wantNotRun, strings.Join(notRun, "\n"))
	}
	if run < 10 {
		t.Errorf("only %d sh blocks run", run)
	}
}

// TestREADME runs every sh block of the README and of each guide in docs/
// as pasted, against gce-emulator, so they cannot rot. Each file gets an
// emulator of three nodes and a HOME of its own, and its blocks run in
// order, each in bash with -euo pipefail. NODE, NODE1 and NODE2 stand for
// the emulator's nodes. The only help the blocks get: ssh reads ~/.ssh
// from the passwd entry, not $HOME, so wrappers point ssh and scp at the
// test's HOME (sshWrappers).
func TestREADME(t *testing.T) {
	need(t, "ssh", "curl", "bash")
	for _, file := range docFiles(t) {
		var blocks []docBlock
		for _, b := range docBlocks(t, file) {
			if b.info == "sh" && b.notRun == "" {
				blocks = append(blocks, b)
			}
		}
		if len(blocks) > 0 {
			t.Run(file, func(t *testing.T) { runDocBlocks(t, file, blocks) })
		}
	}
}

// runDocBlocks runs one file's blocks against an emulator of their own.
func runDocBlocks(t *testing.T, file string, blocks []docBlock) {
	w := startEmulator(t, "--nodes", "3", "--propagation-delay", "100ms")
	have := map[string]bool{}
	for _, n := range w.nodes() {
		have[n.Name] = true
	}
	for _, n := range docNodes {
		if !have[n.name] {
			t.Fatalf("the emulator has no node %s, which the docs use for %s", n.name, n.word)
		}
	}
	sshConfig := filepath.Join(w.home, "ssh_config")
	cfg := "Include " + filepath.Join(w.home, ".ssh", "config") + "\nHost *\n  UserKnownHostsFile " + filepath.Join(w.home, ".ssh", "known_hosts") + "\n"
	if err := os.WriteFile(sshConfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	prelude := "set -euo pipefail\nexport PATH=" + sshWrappers(t, w.home, sshConfig) + ":\"$PATH\"\n"
	for _, b := range blocks {
		text := expectStatus(placeholders(b.text))
		t.Logf("%s:\n%s", b, text)
		if strings.Contains(text, "gkessh tunnel ") {
			runTunnelBlock(t, w, prelude, text)
			continue
		}
		cmd := w.command("bash", "-c", prelude+text)
		if strings.Contains(text, "gce-emulator --background") {
			// A second emulator of the block's own, in a HOME of its own.
			home := t.TempDir()
			cmd.Env = append(cmd.Env, "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
		}
		if strings.Contains(text, "$PWD/bin") {
			// A block for a clone after make build: it runs where bin/
			// holds the commands, and finds them only through its own PATH.
			clone := t.TempDir()
			if err := os.Symlink(testbin.Dir(t, "gkessh", "gce-emulator"), filepath.Join(clone, "bin")); err != nil {
				t.Fatal(err)
			}
			cmd.Dir = clone
			cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"))
		}
		cmd.WaitDelay = 10 * time.Second
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s failed: %v\n%s\noutput:\n%s", b, err, text, out)
		}
	}
}

// sshWrappers writes ssh and scp commands that read config instead of
// ~/.ssh/config, into a directory of home, which it returns: OpenSSH reads
// ~ from the passwd entry, not $HOME, and the blocks run in the test's
// HOME (rsync -e ssh and Ansible find ssh in PATH; scp runs ssh by its
// path, but passes its own -F on).
func sshWrappers(t *testing.T, home, config string) string {
	dir := filepath.Join(home, "ssh-wrappers")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, prog := range []string{"ssh", "scp"} {
		path, err := exec.LookPath(prog)
		if err != nil {
			t.Fatal(err)
		}
		script := fmt.Sprintf("#!/bin/sh\nexec %s -F %s \"$@\"\n", path, config)
		if err := os.WriteFile(filepath.Join(dir, prog), []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// statusComment is a line whose comment says the exit status it ends with.
var statusComment = regexp.MustCompile(`(?m)^(.*\S)\s+#\s[^#\n]*\bexit status (\d+)\b[^#\n]*$`)

// expectStatus makes each line that says "exit status N" in its comment
// check that it does, instead of ending the block (set -e).
func expectStatus(text string) string {
	return statusComment.ReplaceAllString(text,
		`{ ${1} ; } && rc=0 || rc=$$?; [ "$$rc" = ${2} ] || { echo "exit status $$rc where the docs say ${2}" >&2; exit 1; }`)
}

// docNodes are the emulator's first two nodes, which the docs' examples
// name, and what NODE (or NODE1) and NODE2 stand for.
var docNodes = []struct{ word, name string }{
	{"NODE", "gke-cluster-default-pool-3e89aeb0-b47k"},
	{"NODE1", "gke-cluster-default-pool-3e89aeb0-b47k"},
	{"NODE2", "gke-cluster-default-pool-41ef50b9-b47k"},
}

// placeholders puts the node names in for NODE, NODE1 and NODE2.
func placeholders(text string) string {
	for _, n := range docNodes {
		text = regexp.MustCompile(`\b`+n.word+`\b`).ReplaceAllString(text, n.name)
	}
	return text
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
// to a loopback port after the emulator stops).
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

// helpFlag is an option line of gkessh's help: its flags, then their
// argument and usage.
var helpFlag = regexp.MustCompile(`^\s+(-[-\w]+(?: [^,]*)?(?:, -[-\w]+(?: [^,]*)?)*)$`)

// TestDocsNameEveryFlag: every long flag of every command's help is named
// in README.md or docs/, and a command's own flags in its guide
// (docGuide), so a new flag cannot go undocumented and a renamed one is
// renamed in the docs too.
func TestDocsNameEveryFlag(t *testing.T) {
	var docs strings.Builder
	for _, file := range docFiles(t) {
		b, err := os.ReadFile(filepath.Join(moduleRoot(t), file))
		if err != nil {
			t.Fatal(err)
		}
		docs.Write(b)
	}
	gkessh := filepath.Join(testbin.Dir(t, "gkessh", "gce-emulator"), "gkessh")
	help := func(args ...string) string {
		out, err := exec.Command(gkessh, append(args, "--help")...).CombinedOutput()
		if err != nil {
			t.Fatalf("gkessh %s --help: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	commands := [][]string{nil}
	for _, c := range helpCommands(help()) {
		commands = append(commands, []string{c})
		for _, sub := range helpCommands(help(c)) {
			commands = append(commands, []string{c, sub})
		}
	}
	long := regexp.MustCompile(`--[a-z][-a-z0-9]*`)
	missing := map[string][]string{}
	seen := 0
	for _, args := range commands {
		guide := docGuide(args)
		var guideText string
		if guide != "" {
			b, err := os.ReadFile(filepath.Join(moduleRoot(t), guide))
			if err != nil {
				t.Fatal(err)
			}
			guideText = string(b)
		}
		section := ""
		for _, line := range strings.Split(help(args...), "\n") {
			if line != "" && !strings.HasPrefix(line, " ") {
				section = line
			}
			m := helpFlag.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			for _, f := range long.FindAllString(m[1], -1) {
				seen++
				if f == "--help" || f == "--version" {
					continue
				}
				named := regexp.MustCompile(`(^|[^-\w])` + regexp.QuoteMeta(f) + `([^-\w]|$)`)
				cmd := strings.TrimSpace("gkessh " + strings.Join(args, " "))
				if !named.MatchString(docs.String()) {
					missing[f] = append(missing[f], cmd)
				} else if guide != "" && (section == "OPTIONS:" || args == nil) && !named.MatchString(guideText) {
					// A command's own flag belongs where its readers look.
					t.Errorf("%s of %s is not named in %s, the guide of that command", f, cmd, guide)
				}
			}
		}
	}
	for f, where := range missing {
		t.Errorf("%s (%s) is in no doc: say what it does where its command is documented", f, strings.Join(slices.Compact(where), ", "))
	}
	// A help layout this test no longer reads would find no flag and pass.
	if len(commands) < 10 || seen < 100 {
		t.Errorf("read %d flags in the help of %d commands: does helpFlag or helpCommands still match gkessh's help?", seen, len(commands))
	}
}

// TestDocsNameEveryPackage: docs/architecture.md's package table has a
// row for every package of the module, so a new package says its job
// where a newcomer looks for it.
func TestDocsNameEveryPackage(t *testing.T) {
	root := moduleRoot(t)
	golist := func(args ...string) string {
		cmd := exec.Command("go", append([]string{"list"}, args...)...)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	out, module := golist("-f", "{{.ImportPath}}", "./..."), golist("-m")
	b, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	tabled := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if first, _, ok := strings.Cut(strings.TrimPrefix(line, "|"), "|"); ok && strings.HasPrefix(line, "| `") {
			for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(first, -1) {
				tabled[m[1]] = true
			}
		}
	}
	prefix := strings.TrimSpace(module) + "/"
	pkgs := strings.Fields(out)
	for _, p := range pkgs {
		if p = strings.TrimPrefix(p, prefix); !tabled[p] {
			t.Errorf("package %s has no row in docs/architecture.md's package table: add one saying its one job", p)
		}
	}
	if len(pkgs) < 10 {
		t.Errorf("go list found %d packages", len(pkgs))
	}
}

// docGuide is the page of docs/ that documents the command args (nil: a
// login, whose page also lists the global flags), or "" for none.
func docGuide(args []string) string {
	if len(args) == 0 {
		return "docs/login.md"
	}
	switch args[0] {
	case "run":
		return "docs/fleet.md"
	case "cp", "scp":
		return "docs/copy.md"
	case "audit":
		return "docs/audit.md"
	case "keys":
		return "docs/keys.md"
	case "config-ssh", "inventory", "proxy", "tunnel":
		return "docs/openssh.md"
	case "doctor":
		return "docs/troubleshooting.md"
	case "completion":
		return "docs/install.md"
	}
	return ""
}

// helpCommands returns the commands a help text lists under COMMANDS.
func helpCommands(help string) []string {
	var cmds []string
	in := false
	for _, line := range strings.Split(help, "\n") {
		switch {
		case strings.HasPrefix(line, "COMMANDS:"):
			in = true
		case in && strings.HasPrefix(line, "   ") && !strings.HasPrefix(line, "    "):
			if f := strings.Fields(line); len(f) > 0 && f[0] != "help" {
				cmds = append(cmds, strings.TrimSuffix(f[0], ","))
			}
		case in && line != "" && !strings.HasPrefix(line, " "):
			in = false
		}
	}
	return cmds
}
