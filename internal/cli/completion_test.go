package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBashCompletion sources the script in bash and drives its completion
// function as bash would on TAB.
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"gkessh", "completion", "bash"}, Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	script := filepath.Join(t.TempDir(), "gkessh.bash")
	if err := os.WriteFile(script, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		line string // the words typed, the last one being completed
		want string
	}{
		{"gkessh ke", "keys"},
		{"gkessh keys l", "list"},
		{"gkessh proxy --no-e", "--no-ensure-key"},
		{"gkessh config-ssh --dry", "--dry-run"},
		{"gkessh --vers", "--version"},
		{"gkessh node-", "node-a node-b"}, // from the fake gkessh's cache
	}
	fakeNodes(t)
	for _, tt := range tests {
		words := strings.Fields(tt.line)
		cmd := exec.Command("bash", "-c", `source <(cat "$1"); COMP_WORDS=("${@:2}"); COMP_CWORD=$(($# - 2)); _gkessh; echo "${COMPREPLY[*]}"`, "bash", script)
		cmd.Args = append(cmd.Args, words...)
		got, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(got)) != tt.want {
			t.Errorf("%q<TAB>: %q, %v; want %q", tt.line, got, err, tt.want)
		}
	}
}

// fakeNodes puts a gkessh on PATH that answers __complete-nodes as the real
// one would from a cache holding node-a and node-b.
func fakeNodes(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	fake := "#!/bin/sh\n[ \"$1\" = __complete-nodes ] && printf 'node-a\\nnode-b\\n'\n"
	if err := os.WriteFile(filepath.Join(dir, "gkessh"), []byte(fake), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// completionScript runs gkessh completion SHELL and writes the script to a file.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"gkessh", "completion", shell}, Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut}); code != 0 {
		t.Fatalf("completion %s: exit %d: %s", shell, code, errOut.String())
	}
	script := filepath.Join(t.TempDir(), "gkessh."+shell)
	if err := os.WriteFile(script, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return script
}

// TestCompletionScripts generates every shell's script, checks it names
// every command, and has the shell parse it where the shell is installed.
func TestCompletionScripts(t *testing.T) {
	tests := []struct {
		shell string
		check []string // the parse-only command, the script appended
	}{
		{"bash", []string{"bash", "-n"}},
		{"zsh", []string{"zsh", "-n"}},
		{"fish", []string{"fish", "--no-execute"}},
		{"powershell", []string{"pwsh", "-NoProfile", "-Command", "$null = [scriptblock]::Create((Get-Content -Raw $args[0]))"}},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			script := completionScript(t, tt.shell)
			b, _ := os.ReadFile(script)
			for _, cmd := range []string{"keys", "list", "config-ssh", "dry-run", "__complete-nodes"} {
				if !strings.Contains(string(b), cmd) {
					t.Errorf("%s script does not mention %q", tt.shell, cmd)
				}
			}
			if _, err := exec.LookPath(tt.check[0]); err != nil {
				t.Skipf("%s not installed: generated only", tt.check[0])
			}
			if out, err := exec.Command(tt.check[0], append(tt.check[1:], script)...).CombinedOutput(); err != nil {
				t.Errorf("%s does not parse its script: %v\n%s", tt.check[0], err, out)
			}
		})
	}
}

// TestFishCompletion asks fish what it completes with the script loaded.
func TestFishCompletion(t *testing.T) {
	if _, err := exec.LookPath("fish"); err != nil {
		t.Skip("fish not installed")
	}
	script := completionScript(t, "fish")
	fakeNodes(t)
	tests := []struct{ line, want string }{
		{"gkessh ke", "keys"},
		{"gkessh keys l", "list"},
		{"gkessh config-ssh --dry", "--dry-run"},
		{"gkessh node-", "node-a node-b"},
	}
	for _, tt := range tests {
		out, err := exec.Command("fish", "--no-config", "-c", `source $argv[1]; complete -C $argv[2]`, script, tt.line).CombinedOutput()
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			got = append(got, strings.SplitN(l, "\t", 2)[0])
		}
		if err != nil || strings.Join(got, " ") != tt.want {
			t.Errorf("%q<TAB>: %q, %v; want %q", tt.line, out, err, tt.want)
		}
	}
}

// TestCompleteNodes lists the unexpired names of every project's zone
// cache, from the cache alone.
func TestCompleteNodes(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", dir)
	t.Setenv("HOME", dir)
	t.Setenv("LocalAppData", dir)
	cache, err := newDeps(Stdio{}).zoneCache(globalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct{ project, name string }{{"p1", "web-2"}, {"p1", "web-1"}, {"p2", "db-1"}, {"p2", "web-1"}} {
		if err := cache.Put(e.project, e.name, "us-central1-a", 1); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"gkessh", "__complete-nodes"}, Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got, want := out.String(), "db-1\nweb-1\nweb-2\n"; got != want {
		t.Errorf("__complete-nodes printed %q, want %q", got, want)
	}
}
