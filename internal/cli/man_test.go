//go:build !urfave_cli_no_docs

package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestManPage checks gkessh man writes a section-1 page naming every
// visible command and subcommand.
func TestManPage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"gkessh", "man"}, Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	page := out.String()
	if !strings.Contains(page, ".TH gkessh 1") {
		t.Errorf("not a section-1 man page:\n%.200s", page)
	}
	for _, cmd := range newApp(newDeps(Stdio{}), Stdio{}).VisibleCommands() {
		if !strings.Contains(page, "\n.SH "+cmd.Name+"\n") {
			t.Errorf("man page has no section for %q", cmd.Name)
		}
		for _, sub := range cmd.VisibleCommands() {
			if !strings.Contains(page, "\n.SS "+sub.Name+"\n") {
				t.Errorf("man page has no section for %q %q", cmd.Name, sub.Name)
			}
		}
	}
	if strings.Contains(page, "__complete-nodes") {
		t.Error("man page shows the hidden __complete-nodes")
	}
}
