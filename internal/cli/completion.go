package cli

import (
	"fmt"
	"sort"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// completionCommand prints a shell's completion script, made from the
// same command and flag definitions as the help.
func completionCommand(stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:      "completion",
		Usage:     "print a bash completion script: source <(gkessh completion bash)",
		ArgsUsage: "bash",
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 || c.Args().First() != "bash" {
				return usagef("want one shell: gkessh completion bash")
			}
			fmt.Fprint(stdio.Out, bashCompletion(c.App))
			return nil
		},
	}
}

// bashCompletion completes commands and their flags; the first word also
// completes to flags of a login.
func bashCompletion(app *ucli.App) string {
	var cmds []string
	var cases strings.Builder
	for _, cmd := range app.VisibleCommands() {
		cmds = append(cmds, cmd.Names()...)
		words := flagWords(cmd.VisibleFlags())
		for _, sub := range cmd.VisibleCommands() {
			words = append(words, sub.Names()...)
		}
		fmt.Fprintf(&cases, "\t\t%s) words=%q ;;\n", strings.Join(cmd.Names(), "|"), strings.Join(words, " "))
	}
	sort.Strings(cmds)
	return "# gkessh bash completion: source <(gkessh completion bash)\n" +
		"_gkessh() {\n" +
		"\tlocal cur=${COMP_WORDS[COMP_CWORD]} words\n" +
		"\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n" +
		fmt.Sprintf("\t\twords=%q\n", strings.Join(append(cmds, flagWords(app.VisibleFlags())...), " ")) +
		"\telse\n\t\tcase ${COMP_WORDS[1]} in\n" + cases.String() + "\t\t*) words= ;;\n\t\tesac\n\tfi\n" +
		"\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n" +
		"}\n" +
		"complete -o default -F _gkessh gkessh\n"
}

// flagWords are the flags as typed: --name and -n.
func flagWords(flags []ucli.Flag) []string {
	var words []string
	for _, f := range flags {
		for _, n := range f.Names() {
			if len(n) == 1 {
				words = append(words, "-"+n)
			} else {
				words = append(words, "--"+n)
			}
		}
	}
	return words
}
