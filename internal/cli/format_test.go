//go:build unix

package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// TestFormatFlag: --format table|json is the output flag of run, cp,
// audit and keys list; the old spellings (run's --output and -o, the value
// text) still work and say on stderr that they are deprecated; anything
// else is a usage error. (Before, run took only --output, and
// keys list and cp only text|json)
func TestFormatFlag(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	if _, stderr, code := e.run("keys", "ensure"); code != 0 {
		t.Fatalf("keys ensure: %d %s", code, stderr)
	}
	const note = "is deprecated and will go: use --format"
	cases := []struct {
		args       []string
		json, note bool
	}{
		{[]string{"run", "--no-stdin", "--format", "json", node, "--", "true"}, true, false},
		{[]string{"run", "--no-stdin", "--format", "table", node, "--", "true"}, false, false},
		{[]string{"run", "--no-stdin", node, "--", "true"}, false, false},
		{[]string{"run", "--no-stdin", "--output", "json", node, "--", "true"}, true, true},
		{[]string{"run", "--no-stdin", "-o", "json", node, "--", "true"}, true, true},
		{[]string{"run", "--no-stdin", "--output", "text", node, "--", "true"}, false, true},
		{[]string{"run", "--no-stdin", "--format", "text", node, "--", "true"}, false, true},
		{[]string{"audit", "--no-probe", "--format", "json", node}, true, false},
		{[]string{"audit", "--no-probe", node}, false, false},
		{[]string{"keys", "list", "--format", "json"}, true, false},
		{[]string{"keys", "list", "--format", "table"}, false, false},
		{[]string{"keys", "list", "--format", "text"}, false, true},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			out, stderr, code := e.run(tc.args...)
			if code != 0 && !(tc.args[0] == "audit" && code == 1) {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			first, _, _ := strings.Cut(out, "\n")
			if isJSON := json.Valid([]byte(first)) || json.Valid([]byte(out)); isJSON != tc.json {
				t.Errorf("stdout JSON %v, want %v:\n%s", isJSON, tc.json, out)
			}
			if got := strings.Contains(stderr, note); got != tc.note {
				t.Errorf("deprecation note %v, want %v:\n%s", got, tc.note, stderr)
			}
		})
	}
	for _, args := range [][]string{
		{"run", "--format", "yaml", "--all", "--", "true"},
		{"run", "--output", "json", "--format", "json", "--all", "--", "true"},
		{"audit", "--format", "text/plain", "--all"},
		{"keys", "list", "--format", "csv"},
		{"cp", "--format", "xml", "a", node + ":b"},
	} {
		if _, stderr, code := e.run(args...); code != exitUsage || !strings.Contains(stderr, "--format") {
			t.Errorf("%q: exit %d, want %d naming --format; stderr:\n%s", args, code, exitUsage, stderr)
		}
	}
}
