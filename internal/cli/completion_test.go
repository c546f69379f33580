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
	}
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
