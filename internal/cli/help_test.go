//go:build unix

package cli

import (
	"context"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gkessh/gkessh/internal/pty"
)

// TestHelpFitsTerminal: help wraps to the terminal's width (72 and 60
// columns here), with no line wider (but EXAMPLES, whole command lines)
// and no broken wrap; not on a terminal it wraps at helpWidth. (Before, help wrapped at 100 columns
// whatever the terminal, and DESCRIPTION kept its source line breaks)
func TestHelpFitsTerminal(t *testing.T) {
	for _, cols := range []int{72, 60} {
		for _, args := range [][]string{{"run", "--help"}, {"proxy", "--help"}, {"--help"}, {"keys", "list", "--help"}} {
			screen := onTerminal(t, func(tty *os.File) {
				if err := pty.SetSize(tty, 24, cols); err != nil {
					t.Fatal(err)
				}
				code := Main(context.Background(), append([]string{"gkessh"}, args...), Stdio{In: strings.NewReader(""), Out: tty, Err: tty})
				if code != 0 {
					t.Errorf("%v: exit %d", args, code)
				}
			})
			screen = strings.ReplaceAll(screen, "\r", "")
			if !strings.Contains(screen, "USAGE:") {
				t.Fatalf("%v on %d columns: no help:\n%s", args, cols, screen)
			}
			// EXAMPLES are command lines, to be copied whole: a terminal
			// folds them, help does not.
			prose, _, _ := strings.Cut(screen, "\nEXAMPLES:\n")
			for _, line := range strings.Split(prose, "\n") {
				if n := utf8.RuneCountInString(line); n > cols {
					t.Errorf("%v on %d columns: a line of %d: %q", args, cols, n, line)
				}
			}
			if line, next := brokenWrap(screen, cols); line != "" {
				t.Errorf("%v on %d columns: a broken wrap:\n%s\n%s", args, cols, line, next)
			}
		}
	}
	// Not a terminal: helpWidth, so some line is wider than 72.
	wide := false
	for _, line := range strings.Split(renderHelp(t, "gkessh run"), "\n") {
		wide = wide || utf8.RuneCountInString(line) > 72
	}
	if !wide {
		t.Errorf("run --help on a pipe has no line over 72 columns: not wrapped at %d", helpWidth)
	}
}
