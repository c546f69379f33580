package cli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"
)

// boundaryExempt are the library files whose text names gkessh's commands
// or flags on purpose, with why.
var boundaryExempt = map[string]string{
	// audit's findings come with the commands that fix them: that is
	// their point, and the commands are the product's (quoted by
	// shellquote).
	"internal/audit/fix.go": "fix commands",
	// The managed block's markers are a file format that names the
	// command that owns the block.
	"sshconfig/block.go": "the managed block's markers",
	// gcloud's own argv, not text for a user.
	"internal/auth/gcloudcli.go": "gcloud's command line",
}

// TestErrorBoundary: no library package's text names a gkessh command or
// flag: libraries speak their own domain, and the CLI turns their errors
// into fix-it text in one place (hints.go). The names come from the
// command tree, so a new command or flag is covered as it is added.
func TestErrorBoundary(t *testing.T) {
	app := newApp(newDeps(Stdio{}), Stdio{})
	var commands []string
	flags := map[string]bool{}
	addFlags := func(fs []ucli.Flag) {
		for _, f := range fs {
			for _, n := range f.Names() {
				if len(n) > 1 {
					flags[n] = true
				}
			}
		}
	}
	var walk func(path string, cmds []*ucli.Command)
	walk = func(path string, cmds []*ucli.Command) {
		for _, c := range cmds {
			name := strings.TrimSpace(path + " " + c.Name)
			commands = append(commands, name)
			addFlags(c.Flags)
			walk(name, c.Subcommands)
		}
	}
	addFlags(app.Flags)
	walk("", app.Commands)
	var alts []string
	for f := range flags {
		alts = append(alts, regexp.QuoteMeta(f))
	}
	flagRE := regexp.MustCompile(`(^|[^A-Za-z0-9-])--(` + strings.Join(alts, "|") + `)($|[^A-Za-z0-9-])`)
	var cmds []string
	for _, c := range commands {
		cmds = append(cmds, regexp.QuoteMeta(c))
	}
	cmdRE := regexp.MustCompile(`\bgkessh (` + strings.Join(cmds, "|") + `)\b`)

	root := filepath.Join("..", "..")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			switch {
			case strings.HasPrefix(d.Name(), ".") && rel != ".", d.Name() == "testdata",
				rel == "cmd", rel == "emulator", rel == "internal/cli", rel == "internal/e2e", rel == "docs", rel == "scripts",
				strings.HasPrefix(rel, "internal/test"), rel == "internal/emutest":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") || boundaryExempt[rel] != "" {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if m := flagRE.FindStringSubmatch(s); m != nil {
				t.Errorf("%s: %q names gkessh's flag --%s: return a typed error and let hints.go say it", rel, s, m[2])
			}
			if m := cmdRE.FindStringSubmatch(s); m != nil {
				t.Errorf("%s: %q names the command 'gkessh %s': return a typed error and let hints.go say it", rel, s, m[1])
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d library files checked: the walk missed the tree", checked)
	}
}

// TestDepsIsAFactory: deps holds constructors only, as gh's Factory does:
// it has no methods, and nothing but newDeps sets its fields (tests
// replace theirs before use).
func TestDepsIsAFactory(t *testing.T) {
	fields := map[string]bool{}
	for f := range reflect.TypeOf(deps{}).Fields() {
		fields[f.Name] = true
	}
	for name, f := range cliSources(t) {
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			if fn.Recv != nil {
				if typ := types(fn.Recv.List[0].Type); typ == "deps" {
					t.Errorf("%s: deps has a method %s: make it a constructor field set in newDeps, or a function of deps and the options", name, fn.Name.Name)
				}
			}
			if fn.Name.Name == "newDeps" || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				as, ok := n.(*ast.AssignStmt)
				if !ok {
					return true
				}
				for _, lhs := range as.Lhs {
					sel, ok := lhs.(*ast.SelectorExpr)
					if !ok || !fields[sel.Sel.Name] {
						continue
					}
					if x := types(sel.X); x == "d" || x == "deps" {
						t.Errorf("%s: %s sets deps.%s: deps is built once, by newDeps", name, fn.Name.Name, sel.Sel.Name)
					}
				}
				return true
			})
		}
	}
}

// types names what a receiver type or an expression ends in: deps for
// *deps, d for o.d.
func types(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return types(e.X)
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}

// TestOSLoginThroughAccess: every call to the OS Login API goes through
// internal/access, the one place that decides OS Login: the CLI calls
// none of gce's OS Login methods (read from gce's source: those that use
// the oslogin API), so a new one is covered as it is added.
func TestOSLoginThroughAccess(t *testing.T) {
	osLogin := map[string]bool{}
	gceFiles, err := filepath.Glob(filepath.Join("..", "gce", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range gceFiles {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv != nil && fn.Body != nil &&
				strings.Contains(string(src[fn.Body.Pos()-f.FileStart:fn.Body.End()-f.FileStart]), `apiRoot("oslogin")`) {
				osLogin[fn.Name.Name] = true
			}
		}
	}
	if len(osLogin) < 3 {
		t.Fatalf("found only %v in gce: the scan missed them", osLogin)
	}
	for name, f := range cliSources(t) {
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && osLogin[sel.Sel.Name] {
					t.Errorf("%s calls gce's %s: OS Login goes through internal/access", name, sel.Sel.Name)
				}
			}
			return true
		})
	}
}

// cliSources parses this package's non-test files, by file name.
func cliSources(t *testing.T) map[string]*ast.File {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*ast.File{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = f
	}
	return files
}
