//go:build unix

package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	ucli "github.com/urfave/cli/v2"

	"github.com/gkessh/gkessh/emulator"
)

// TestCommandDocs walks the command tree and lints what --help shows: every
// command and flag says what it does, in gkessh's voice, and no command has
// two flags answering to the same name (urfave panics on those at run time,
// as -v once did). Each command's rendered help (helpLint) has an EXAMPLES
// section, fits helpWidth columns, never shows a boolean's "(default:
// false)", and a command with subcommands names them in USAGE.
func TestCommandDocs(t *testing.T) {
	stdio := Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}
	app := newApp(newDeps(stdio), stdio)
	var walk func(path string, flags []ucli.Flag, cmds []*ucli.Command)
	walk = func(path string, flags []ucli.Flag, cmds []*ucli.Command) {
		seen := map[string]bool{}
		for _, f := range flags {
			for _, name := range f.Names() {
				if seen[name] {
					t.Errorf("%s: two flags named %q", path, name)
				}
				seen[name] = true
			}
			df, ok := f.(ucli.DocGenerationFlag)
			if !ok {
				continue
			}
			if u := df.GetUsage(); !lintText(u) {
				t.Errorf("%s --%s: usage %q should start lowercase and not end with a period", path, f.Names()[0], u)
			}
		}
		helpLint(t, path)
		for _, c := range cmds {
			p := path + " " + c.Name
			if !lintText(c.Usage) {
				t.Errorf("%s: usage %q should be a lowercase phrase without a final period", p, c.Usage)
			}
			walk(p, c.Flags, c.Subcommands)
			if len(c.Subcommands) > 0 {
				var subs []string
				for _, sub := range c.Subcommands {
					subs = append(subs, sub.Name)
				}
				usage := strings.Join(subs, "|")
				if out := renderHelp(t, p); !strings.Contains(out, usage) {
					t.Errorf("%s --help: USAGE does not name the subcommands (%s):\n%s", p, usage, out)
				}
			}
		}
	}
	walk("gkessh", app.Flags, app.Commands)
	// hoistFlags moves a global flag to gkessh itself, so a command's own
	// flag of that name would never be set; and it reads a flag it cannot
	// place yet (typed before its command) by its name alone, so flags of
	// one name must agree on taking a value.
	takes := map[string]bool{}
	var check func(path string, flags []ucli.Flag, cmds []*ucli.Command)
	check = func(path string, flags []ucli.Flag, cmds []*ucli.Command) {
		for _, f := range flags {
			for _, name := range f.Names() {
				if _, global := globalName[name]; global && path != "gkessh" {
					t.Errorf("%s: a flag of its own named --%s, like a global flag", path, name)
				}
				v := takesValue(f, "--"+name)
				if w, ok := takes[name]; ok && w != v {
					t.Errorf("%s --%s: takes a value %v, but another --%s %v", path, name, v, name, w)
				}
				takes[name] = v
			}
		}
		for _, c := range cmds {
			check(path+" "+c.Name, c.Flags, c.Subcommands)
		}
	}
	check("gkessh", app.Flags, app.Commands)
	for path, globals := range globalsOf {
		if commandAt(app, path) == nil && path != "gkessh" {
			t.Errorf("globalsOf: no command %q", path)
		}
		for _, g := range globals {
			if globalName[g] != g {
				t.Errorf("globalsOf[%q]: %q is no global flag's name", path, g)
			}
		}
	}
	names := map[string]bool{}
	for _, c := range app.Commands {
		names[c.Name] = true
	}
	for _, want := range []string{"proxy", "tunnel", "keys", "config-ssh", "inventory", "doctor"} {
		if !names[want] {
			t.Errorf("no %q command", want)
		}
	}
}

// renderHelp is what `PATH --help` prints.
func renderHelp(t *testing.T, path string) string {
	t.Helper()
	var out, errb strings.Builder
	args := append(strings.Fields(path), "--help")
	if code := Main(t.Context(), args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}); code != 0 {
		t.Errorf("%s --help: exit %d: %s", path, code, errb.String())
	}
	return out.String()
}

// helpLint checks the help of the command at path as printed.
func helpLint(t *testing.T, path string) {
	t.Helper()
	out := renderHelp(t, path)
	if !strings.Contains(out, "\nEXAMPLES:\n") {
		t.Errorf("%s --help has no EXAMPLES section", path)
	}
	for _, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > helpWidth {
			t.Errorf("%s --help: a line of %d columns, over %d: %q", path, n, helpWidth, line)
		}
	}
	if strings.Contains(out, "(default: false)") {
		t.Errorf("%s --help shows a boolean's (default: false)", path)
	}
	if line, next := brokenWrap(out, helpWidth); line != "" {
		t.Errorf("%s --help: a line ends before it has to:\n%s\n%s", path, line, next)
	}
}

// brokenWrap finds two lines of DESCRIPTION prose where the first word of
// the second would have fit on the first: a line break in the source text,
// not a wrap at width.
func brokenWrap(help string, width int) (line, next string) {
	_, desc, ok := strings.Cut(help, "\nDESCRIPTION:\n")
	if !ok {
		return "", ""
	}
	desc, _, _ = strings.Cut(desc, "\n\n")
	prose := func(l string) bool { return strings.HasPrefix(l, "   ") && len(l) > 3 && l[3] != ' ' }
	lines := strings.Split(desc, "\n")
	for i := 0; i+1 < len(lines); i++ {
		a, b := lines[i], lines[i+1]
		word, _, _ := strings.Cut(strings.TrimSpace(b), " ")
		if prose(a) && prose(b) && utf8.RuneCountInString(a)+1+utf8.RuneCountInString(word) <= width {
			return a, b
		}
	}
	return "", ""
}

func lintText(s string) bool {
	if s == "" || strings.HasSuffix(s, ".") {
		return false
	}
	// A capital is fine only for an acronym (SSH, IAP, OS Login).
	first, _, _ := strings.Cut(s, " ")
	return !unicode.IsUpper([]rune(first)[0]) || strings.ToUpper(first) == first
}

// TestVersionAndVerbose checks that --version prints the version and that
// -v is --verbose, not a clash with urfave's version flag.
func TestVersionAndVerbose(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{})
	out, _, code := e.run("--version")
	if code != 0 || out != versionLine()+"\n" {
		t.Fatalf("--version: exit %d, %q", code, out)
	}
	if _, errOut, code := e.run("doctor", "-v"); code != 0 {
		t.Fatalf("doctor -v: exit %d: %s", code, errOut)
	}
}

// TestBadUserEveryCommand: every command that takes --user checks it the
// same way and calls a bad one a usage error (doctor, config-ssh and
// inventory once had their own --user, unchecked, and exited 1).
func TestBadUserEveryCommand(t *testing.T) {
	t.Parallel()
	const bad = "--user=al ice"
	for _, args := range [][]string{
		{bad, "NODE"},
		{"proxy", bad, "NODE"},
		{"keys", "ensure", bad},
		{"keys", "remove", bad},
		{"config-ssh", bad},
		{"inventory", "--list", bad},
		{"doctor", bad},
		{"run", "--all", bad, "--", "true"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var errb strings.Builder
			argv := append([]string{"gkessh"}, args...)
			code := Main(t.Context(), argv, Stdio{In: strings.NewReader(""), Out: io.Discard, Err: &errb})
			want := exitUsage
			if args[1] == "NODE" {
				want = 255 // a login's usage errors exit 255, as ssh's do
			}
			if code != want || !strings.Contains(errb.String(), "al ice") {
				t.Fatalf("%q: exit %d, %q; want %d naming the user", argv, code, errb.String(), want)
			}
		})
	}
}

// TestUsageErrorPointsAtHelp: a usage error names the help of the command
// it happened in.
func TestUsageErrorPointsAtHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		help string
	}{
		{[]string{"--bogus", "NODE"}, "gkessh --help"},
		{[]string{"keys", "list", "--bogus"}, "gkessh keys list --help"},
		{[]string{"keys", "ensure", "--scope", "x"}, "gkessh keys ensure --help"},
		{[]string{"proxy"}, "gkessh proxy --help"},
		{[]string{"tunnel", "NODE", "99999"}, "gkessh tunnel --help"},
		{[]string{"config-ssh", "--filter", "("}, "gkessh config-ssh --help"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var errb strings.Builder
			code := Main(t.Context(), append([]string{"gkessh"}, tt.args...), Stdio{In: strings.NewReader(""), Out: io.Discard, Err: &errb})
			wantCode := exitUsage
			if tt.args[0] == "--bogus" {
				wantCode = exitFailure // a login's usage errors exit 255, as ssh's do
			}
			if want := "See '" + tt.help + "'."; code != wantCode || !strings.Contains(errb.String(), want) {
				t.Fatalf("exit %d, %q; want %d and %q", code, errb.String(), wantCode, want)
			}
		})
	}
}

// commandAt is the command at path ("gkessh keys list"), or nil.
func commandAt(app *ucli.App, path string) *ucli.Command {
	words := strings.Fields(path)[1:]
	cmds := app.Commands
	var c *ucli.Command
	for _, w := range words {
		if c = findCommand(cmds, w); c == nil {
			return nil
		}
		cmds = c.Subcommands
	}
	return c
}

// TestMainConcurrent runs gkessh in one process many times at once, as the
// parallel tests do: every command's help, a usage error and the version,
// each run side by side with the others, must print what it prints alone.
// Under -race it also finds state two runs share: urfave's package-level
// help flag, which every app used to add to its commands and write into
// as it parsed, did.
func TestMainConcurrent(t *testing.T) {
	t.Parallel()
	stdio := Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}
	var runs [][]string
	var walk func(path []string, cmds []*ucli.Command)
	walk = func(path []string, cmds []*ucli.Command) {
		for _, c := range cmds {
			p := append(slices.Clone(path), c.Name)
			runs = append(runs, append(slices.Clone(p), "--help"))
			walk(p, c.Subcommands)
		}
	}
	walk([]string{"gkessh"}, newApp(newDeps(stdio), stdio).Commands)
	runs = append(runs, []string{"gkessh", "--help"}, []string{"gkessh", "version"}, []string{"gkessh", "--project", "a", "run", "--project", "b", "--all", "--", "id"})
	type result struct {
		code     int
		out, err string
	}
	run := func(args []string) result {
		var out, errb strings.Builder
		code := mainWith(t.Context(), args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}, newDeps(Stdio{}))
		return result{code, out.String(), errb.String()}
	}
	want := make([]result, len(runs))
	for i, args := range runs {
		want[i] = run(args)
	}
	var wg sync.WaitGroup
	for range 4 {
		for i, args := range runs {
			wg.Go(func() {
				if got := run(args); got != want[i] {
					t.Errorf("%q run side by side: %+v, alone: %+v", args, got, want[i])
				}
			})
		}
	}
	wg.Wait()
}

// TestParallelDefaults: run works on 64 nodes at a time, cp on 32 (a copy
// in flight holds far more memory than a command), as their help says.
func TestParallelDefaults(t *testing.T) {
	for _, tc := range []struct {
		path string
		want int
	}{{"gkessh run", defaultParallel}, {"gkessh cp", copyParallel}, {"gkessh scp", copyParallel}} {
		if !strings.Contains(renderHelp(t, tc.path), fmt.Sprintf("work on up to N nodes at a time (default: %d)", tc.want)) {
			t.Errorf("%s --help does not give -P's default as %d", tc.path, tc.want)
		}
	}
	if defaultParallel != 64 || copyParallel != 32 {
		t.Errorf("-P defaults %d (run) and %d (cp), want 64 and 32", defaultParallel, copyParallel)
	}
}
