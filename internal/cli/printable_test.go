//go:build unix

package cli

import (
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

func TestPrintable(t *testing.T) {
	tests := map[string]string{
		"alice":             "alice",
		"größe":             "größe",
		"a\x1b[2Kb":         `a\x1b[2Kb`,
		"a\rb":              `a\rb`,
		"a\nb":              `a\nb`,
		"a\tb":              `a\tb`,
		"a\u202eb":          `a\u202eb`, // right-to-left override
		"a\u200bb":          `a\u200bb`, // zero-width space
		"a\x9bb":            `a\x9bb`,   // invalid UTF-8 (a C1 CSI byte)
		"a\u009bb":          `a\u009bb`, // the C1 CSI character itself
		"keep \uFFFD as is": "keep \uFFFD as is",
		"\x7f":              `\x7f`,
	}
	for in, want := range tests {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
	if got := printableLines("one\x1b[A\ntwo"); got != "one\\x1b[A\ntwo" {
		t.Errorf("printableLines = %q", got)
	}
}

// TestKeysListEscapes: a metadata line whose user name carries terminal
// escapes is shown escaped in keys list and keys list --audit, so it cannot
// erase the row above it (a backdoor key) from the screen.
func TestKeysListEscapes(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	lines := "backdoor:" + key + " backdoor\n" +
		"x\x1b[1A\x1b[2K\r:" + key + " hide\n" +
		"y\u202e:" + key + " y\n"
	if err := e.srv.SetProjectMetadata(map[string]*string{"ssh-keys": &lines}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"keys", "list"}, {"keys", "list", "--audit"}} {
		out, errOut, code := e.run(args...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, errOut)
		}
		for _, stream := range []string{out, errOut} {
			if strings.ContainsAny(stream, "\x1b\r\u202e") {
				t.Errorf("%q prints raw control characters: %q", args, stream)
			}
		}
		if !strings.Contains(out, "backdoor") || !strings.Contains(out, `\x1b[1A`) {
			t.Errorf("%q:\n%s", args, out)
		}
	}
}
