package shellquote

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hostile are words a shell would act on if they reached it unquoted.
var hostile = []string{
	"", "plain", "a b", "tab\there", "new\nline", "$(touch MARKER)", "`touch MARKER`", "a;touch MARKER",
	"it's", `say "hi"`, `back\slash`, "$HOME", "${IFS}", "*", "?", "[ab]", "~", "~root", "#comment", "a#b",
	"a|b", "a&b", "a>b", "a<b", "(x)", "{x,y}", "!x", "-x", "--flag=value", "x=y", "PATH=/tmp", "_x=1",
	"9x=1", "%", "a%b", "user@host:/p,q+r", "é", "\u202e", "''", `'\''`,
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"--zone=us-west1-a", "--zone=us-west1-a"},
		{"user@host:/p,q+r%", "user@host:/p,q+r%"},
		{"", "''"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"x=y", "'x=y'"},
		{"9x=1", "9x=1"},
		{"~", "'~'"},
		{"$(id)", "'$(id)'"},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestJoinThroughSh: sh splits Join's line back into exactly the words
// given, and runs nothing inside them.
func TestJoinThroughSh(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "MARKER")
	var words []string
	for _, w := range hostile {
		words = append(words, strings.ReplaceAll(w, "MARKER", marker))
	}
	cmd := exec.Command(sh, "-c", `printf '%s\0' `+Join(words...))
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !slices.Equal(got, words) {
		t.Errorf("sh split\n%q\ninto\n%q", words, got)
	}
	if matches, _ := filepath.Glob(marker + "*"); len(matches) > 0 {
		t.Errorf("sh ran a command from the words: %v", matches)
	}
	// Python's shlex (Ansible's ssh arguments) reads it the same way.
	if py, err := exec.LookPath("python3"); err == nil {
		cmd := exec.Command(py, "-c", "import shlex,sys; sys.stdout.write('\\0'.join(shlex.split(sys.stdin.read())))")
		cmd.Stdin = strings.NewReader(Join(words...))
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Split(string(out), "\x00"); !slices.Equal(got, words) {
			t.Errorf("shlex split\n%q\ninto\n%q", words, got)
		}
	}
}

// TestLine: a word a terminal would not show as it is makes no line.
func TestLine(t *testing.T) {
	for _, w := range []string{"new\nline", "\x1b[2J", "bi\u202edi", "\xff"} {
		if line, ok := Line("gkessh", w); ok {
			t.Errorf("Line(%q) = %s, want none", w, line)
		}
	}
	if line, ok := Line("a b", "c"); !ok || line != "'a b' c" {
		t.Errorf("Line = %q, %v", line, ok)
	}
}
