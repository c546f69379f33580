package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/suggest"
)

// helpCommand is `gkessh help [COMMAND...]`: the same as COMMAND --help, so
// "help" is never looked up as a node name.
func helpCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "help",
		Usage:     "show help for gkessh or for COMMAND",
		ArgsUsage: "[COMMAND [SUBCOMMAND]]",
		Action: func(c *ucli.Context) error {
			args := c.Args().Slice()
			cmds := c.App.Commands
			for i, name := range args {
				cmd := findCommand(cmds, name)
				if cmd == nil {
					return usagef("no help topic %q%s", strings.Join(args[:i+1], " "), suggestion(cmds, name))
				}
				cmds = cmd.Subcommands
			}
			if len(args) == 0 {
				return ucli.ShowAppHelp(c)
			}
			// Run the command path with --help, so urfave prints it with
			// its full name and flags.
			return c.App.RunContext(c.Context, append(append([]string{c.App.Name}, args...), "--help"))
		},
	}
}

// versionCommand is `gkessh version`, which --version also does.
func versionCommand(stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:  "version",
		Usage: "print gkessh's version",
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				return usagef("version takes no arguments")
			}
			fmt.Fprintln(stdio.Out, versionLine())
			return nil
		},
	}
}

// nearCommand returns the gkessh command that name is one edit (an insert,
// a delete, a change or a swap of neighbours) away from, or "": a login to
// such a NODE that is no instance was most likely a mistyped command.
func nearCommand(name string) string {
	for _, c := range newApp(newDeps(Stdio{}), Stdio{}).Commands {
		for _, n := range c.Names() {
			if n != name && suggest.Distance(n, name) <= 1 {
				return c.Name
			}
		}
	}
	return ""
}

// nearCommandError is a failed lookup of a NODE that is one edit away from
// a gkessh command: mainWith reports it as a mistyped command.
type nearCommandError struct {
	error
}

func (e *nearCommandError) Unwrap() error { return e.error }

// asNearCommand marks err, a failed lookup of node, as a mistyped command
// when no instance has that name and it is one edit from a command's.
func asNearCommand(node string, err error) error {
	var none *gce.NoInstanceError
	if errors.As(err, &none) && nearCommand(node) != "" {
		return &nearCommandError{err}
	}
	return err
}

// suggestion is ": did you mean X?" for the command among cmds that name is
// one edit away from, else "".
func suggestion(cmds []*ucli.Command, name string) string {
	for _, c := range cmds {
		for _, n := range c.Names() {
			if suggest.Distance(n, name) <= 1 {
				return fmt.Sprintf(": did you mean %s?", c.Name)
			}
		}
	}
	return ""
}

// helpWidth is the widest line gkessh's help prints (TestCommandDocs):
// its width when not on a terminal, and at most on one.
const helpWidth = 100

// minHelpWidth is the narrowest help wraps to, whatever the terminal says.
const minHelpWidth = 40

func init() {
	// urfave aligns every flag's text after the longest flag name, which
	// repeatable flags make long: give each flag its name line and its
	// text below, and wrap everything to the terminal (helpWidthOf).
	ucli.FlagStringer = flagHelp
	ucli.HelpPrinter = func(w io.Writer, templ string, data any) {
		width := helpWidthOf(w)
		ucli.HelpPrinterCustom(w, templ, data, map[string]any{"wrapAt": func() int { return width }})
	}
}

// helpWidthOf is the width help wraps to on w: a terminal's columns, up to
// helpWidth (longer lines read worse), else helpWidth.
func helpWidthOf(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			return min(max(cols, minHelpWidth), helpWidth)
		}
	}
	return helpWidth
}

// reflow joins a description's lines into paragraphs for help to wrap at
// the terminal's width: a line break in the source is a space, a blank
// line a paragraph, and an indented line stays as it is (an example).
func reflow(text string) string {
	var b strings.Builder
	joining := false // the last line written is prose another may join
	for i, line := range strings.Split(text, "\n") {
		prose := line != "" && line[0] != ' ' && line[0] != '\t'
		switch {
		case i == 0:
		case prose && joining:
			b.WriteByte(' ')
		default:
			b.WriteByte('\n')
		}
		b.WriteString(line)
		joining = prose
	}
	return b.String()
}

// flagHelp is a flag as help shows it: "--name VALUE, -n VALUE" and, on
// the next line, what it does, its default (not for booleans, whose
// default is always off) and its environment variables.
func flagHelp(f ucli.Flag) string {
	df, ok := f.(ucli.DocGenerationFlag)
	if !ok {
		return strings.Join(f.Names(), ", ")
	}
	usage, placeholder := df.GetUsage(), ""
	if i := strings.Index(usage, "`"); i >= 0 {
		if j := strings.Index(usage[i+1:], "`"); j >= 0 {
			placeholder = usage[i+1 : i+1+j]
			usage = usage[:i] + placeholder + usage[i+2+j:]
		}
	}
	if placeholder == "" && df.TakesValue() {
		placeholder = "VALUE"
	}
	var names []string
	for _, n := range f.Names() {
		dash := "--"
		if len(n) == 1 {
			dash = "-"
		}
		if placeholder != "" {
			n += " " + placeholder
		}
		names = append(names, dash+n)
	}
	if _, isBool := f.(*ucli.BoolFlag); isBool {
		// Off unless given: "(default: false)" only adds noise.
	} else if def := df.GetDefaultText(); def != "" {
		usage += " (default: " + def + ")"
	} else if v := df.GetValue(); v != "" && df.TakesValue() && v != `""` {
		usage += " (default: " + v + ")"
	}
	if env := append(df.GetEnvVars(), globalEnv[f.Names()[0]]...); len(env) > 0 {
		usage += " [$" + strings.Join(env, ", $") + "]"
	}
	if _, repeat := f.(*ucli.StringSliceFlag); repeat && !strings.Contains(usage, "repeatable") {
		usage += " (repeatable)"
	}
	return strings.Join(names, ", ") + "\n" + usage
}

// examples are each command's EXAMPLES section, by its full name.
var examples = map[string][]string{
	"gkessh": {
		"gkessh gke-cluster-default-pool-3e89aeb0-b47k           # a shell on the node",
		"gkessh gke-cluster-default-pool-3e89aeb0-b47k -- id     # run a command",
		"gkessh root@my-vm --zone us-west1-a -- systemctl status kubelet",
		"gkessh -N -L 10255:localhost:10255 NODE                 # forward a port",
		"gkessh help keys                                        # help on a command",
	},
	"gkessh completion": {
		"source <(gkessh completion bash)     # in ~/.bashrc: TAB completes commands, flags, cached nodes",
		"source <(gkessh completion zsh)      # in ~/.zshrc, after compinit",
		"gkessh completion fish | source      # in ~/.config/fish/config.fish",
		"gkessh completion powershell | Out-String | Invoke-Expression   # in $PROFILE",
	},
	"gkessh __complete-nodes": {
		"gkessh __complete-nodes              # what the completion scripts call",
	},
	"gkessh man": {
		"go run ./cmd/gkessh man > gkessh.1   # what make man runs",
	},
	"gkessh proxy": {
		"ssh -i ~/.ssh/google_compute_engine -o ProxyCommand='gkessh proxy --user %r %h %p' NODE",
		"gkessh proxy --zone us-west1-a NODE 22   # as ssh's ProxyCommand runs it",
	},
	"gkessh tunnel": {
		"gkessh tunnel NODE 8080                      # localhost, a port of the system's choosing",
		"gkessh tunnel NODE 10255 --listen 10255      # 127.0.0.1:10255",
	},
	"gkessh keys": {
		"gkessh keys ensure",
		"gkessh keys list --audit --fail",
	},
	"gkessh keys ensure": {
		"gkessh keys ensure                          # project metadata, expiring in 24h",
		"gkessh keys ensure NODE --key-expire-after 1h",
	},
	"gkessh keys list": {
		"gkessh keys list NODE",
		"gkessh keys list --fail --format json       # in CI: exit 3 when a line has a problem",
	},
	"gkessh keys remove": {
		"gkessh keys remove                          # this machine's key, project metadata",
		"gkessh keys remove --user alice NODE        # every key of alice in NODE's metadata",
	},
	"gkessh keys prune": {
		"gkessh keys prune",
		"gkessh keys prune --all-expired --dry-run",
	},
	"gkessh config-ssh": {
		"gkessh config-ssh && ssh NODE",
		"gkessh config-ssh --filter '^gke-prod-' --zone us-west1-a --dry-run",
		"gkessh config-ssh --remove",
	},
	"gkessh inventory": {
		"printf '#!/bin/sh\\nexec gkessh inventory \"$@\"\\n' > inv && chmod +x inv",
		"ansible all -i ./inv -m ping",
	},
	"gkessh doctor": {
		"gkessh doctor",
		"gkessh doctor NODE",
	},
	"gkessh audit": {
		"gkessh audit --all",
		"gkessh audit --cluster prod --format json",
	},
	"gkessh run": {
		"gkessh run --all -- uptime",
		"gkessh run --cluster prod --pool default-pool -P 32 -- 'journalctl -u kubelet -n 5'",
	},
	"gkessh cp": {
		"gkessh cp ./debug-tool NODE:/tmp/                  # one node",
		"gkessh cp -r NODE:/var/log/pods ./logs             # a tree back",
		"gkessh cp --cluster prod ./agent.conf :/tmp/       # every node of a cluster",
		"gkessh cp --pool default-pool :/var/log/syslog ./logs   # into ./logs/NODE/syslog",
	},
	"gkessh scp": {
		"gkessh scp --recurse ./conf NODE:~/ --zone us-west1-a --tunnel-through-iap",
	},
	"gkessh help": {
		"gkessh help",
		"gkessh help keys list",
	},
	"gkessh version": {
		"gkessh version",
	},
}

// addExamples appends each command's EXAMPLES section to its help.
func addExamples(app *ucli.App) {
	section := func(path string) string {
		ex := examples[path]
		if len(ex) == 0 {
			return ""
		}
		return "\nEXAMPLES:\n   " + strings.Join(ex, "\n   ") + "\n"
	}
	app.CustomAppHelpTemplate = ucli.AppHelpTemplate + section(app.Name)
	names := firstNames(app.Flags)
	var walk func(path string, cmds []*ucli.Command)
	walk = func(path string, cmds []*ucli.Command) {
		for _, c := range cmds {
			p := path + " " + c.Name
			base := ucli.CommandHelpTemplate
			if len(c.Subcommands) > 0 {
				base = ucli.SubcommandHelpTemplate
			}
			c.CustomHelpTemplate = base + globalSection(app, names, p) + section(p)
			c.Description = reflow(c.Description)
			if c.UsageText == "" {
				// Spelled out, so that help wraps it like any text.
				c.UsageText = strings.TrimSpace(p + " [flags] " + c.ArgsUsage)
			}
			walk(p, c.Subcommands)
		}
	}
	walk(app.Name, app.Commands)
}

// globalSection names the global flags the command at path honours, in
// its help, for gkessh --help to describe; names are app's global flags'
// (firstNames).
func globalSection(app *ucli.App, names []string, path string) string {
	_, honouredNames := honoured(app, names, path)
	if len(honouredNames) == 0 {
		return ""
	}
	return "\nGLOBAL OPTIONS (see 'gkessh --help'):\n   {{wrap `before or after the command: --" +
		strings.Join(honouredNames, ", --") + "` 3}}\n"
}
