package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// helpCommand is `gkessh help [COMMAND...]`: the same as COMMAND --help, so
// "help" is never looked up as a node name.
func helpCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "help",
		Usage:     "show help for gkessh or for COMMAND",
		ArgsUsage: "[COMMAND [SUBCOMMAND]]",
		Description: "Examples:\n" +
			"  gkessh help\n" +
			"  gkessh help keys list",
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
		Name:        "version",
		Usage:       "print gkessh's version",
		Description: "Example:\n  gkessh version",
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				return usagef("version takes no arguments")
			}
			fmt.Fprintf(stdio.Out, "gkessh %s\n", Version)
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
			if n != name && editDistance(n, name) <= 1 {
				return c.Name
			}
		}
	}
	return ""
}

// suggestion is ": did you mean X?" for the command among cmds that name is
// one edit away from, else "".
func suggestion(cmds []*ucli.Command, name string) string {
	for _, c := range cmds {
		for _, n := range c.Names() {
			if editDistance(n, name) <= 1 {
				return fmt.Sprintf(": did you mean %s?", c.Name)
			}
		}
	}
	return ""
}

// editDistance is the optimal string alignment distance between a and b:
// Levenshtein's, with a swap of two neighbours counting as one edit.
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}
