package cli

import (
	"fmt"
	"sort"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// shells maps each supported shell to its script generator.
var shells = map[string]func(*ucli.App) string{
	"bash":       bashCompletion,
	"zsh":        zshCompletion,
	"fish":       fishCompletion,
	"powershell": powershellCompletion,
}

// completionCommand prints a shell's completion script, made from the
// same command and flag definitions as the help.
func completionCommand(stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: source <(gkessh completion bash)",
		ArgsUsage: "bash|zsh|fish|powershell",
		Action: func(c *ucli.Context) error {
			gen, ok := shells[c.Args().First()]
			if c.NArg() != 1 || !ok {
				return usagef("want one shell: gkessh completion bash|zsh|fish|powershell")
			}
			fmt.Fprint(stdio.Out, gen(c.App))
			return nil
		},
	}
}

// completeNodesCommand prints the node names in the zone cache, one a
// line, for the completion scripts. It reads only the cache, so a TAB
// never waits on the network.
func completeNodesCommand(d *deps, stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:   "__complete-nodes",
		Usage:  "print the node names in the zone cache, for completion scripts",
		Hidden: true,
		Action: func(*ucli.Context) error {
			cache, err := d.zoneCache(globalOptions{})
			if err != nil {
				return nil // no cache directory: nothing to complete
			}
			for _, n := range cache.Names() {
				fmt.Fprintln(stdio.Out, n)
			}
			return nil
		},
	}
}

// completionWords are what completes after "gkessh": commands, the flags
// of a login (sorted), and what completes after each command: its flags
// and subcommands.
func completionWords(app *ucli.App) (top []string, cmds []*ucli.Command, after map[*ucli.Command][]string) {
	after = map[*ucli.Command][]string{}
	names := firstNames(app.Flags)
	for _, cmd := range app.VisibleCommands() {
		top = append(top, cmd.Names()...)
		globals, _ := honoured(app, names, app.Name+" "+cmd.Name)
		words := flagWords(append(cmd.VisibleFlags(), globals...))
		for _, sub := range cmd.VisibleCommands() {
			words = append(words, sub.Names()...)
		}
		cmds = append(cmds, cmd)
		after[cmd] = words
	}
	sort.Strings(top)
	return append(top, flagWords(app.VisibleFlags())...), cmds, after
}

// bashCompletion completes commands and their flags; the first word also
// completes to flags of a login and to node names in the zone cache.
func bashCompletion(app *ucli.App) string {
	return "# gkessh bash completion: source <(gkessh completion bash)\n" +
		"_gkessh() {\n" +
		"\tlocal cur=${COMP_WORDS[COMP_CWORD]} words\n" +
		shChoose(app, `[ "$COMP_CWORD" -eq 1 ]`, "${COMP_WORDS[1]}", `words="%s"`, "$(gkessh __complete-nodes 2>/dev/null)") +
		"\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n" +
		"}\n" +
		"complete -o default -F _gkessh gkessh\n"
}

// zshCompletion is bashCompletion's logic with zsh's compadd; after a
// command's own words it falls back to file names.
func zshCompletion(app *ucli.App) string {
	return "#compdef gkessh\n" +
		"# gkessh zsh completion: source <(gkessh completion zsh), after compinit\n" +
		"_gkessh() {\n" +
		"\tlocal -a w\n" +
		shChoose(app, "(( CURRENT == 2 ))", "${words[2]}", "w=(%s)", `${(f)"$(gkessh __complete-nodes 2>/dev/null)"}`) +
		"\tcompadd -a w\n" +
		"\t_files\n" +
		"}\n" +
		"compdef _gkessh gkessh\n"
}

// shChoose is the choice of words bash and zsh completion share: at the
// first word the top-level words and the cached node names, after a
// command that command's words. first tests for the first word, cmd is the
// command word, assign sets the words (%s) in the shell's syntax, and nodes
// expands to the cached node names.
func shChoose(app *ucli.App, first, cmd, assign, nodes string) string {
	top, cmds, after := completionWords(app)
	var cases strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&cases, "\t\t%s) %s ;;\n", strings.Join(c.Names(), "|"), fmt.Sprintf(assign, strings.Join(after[c], " ")))
	}
	return "\tif " + first + "; then\n" +
		"\t\t" + fmt.Sprintf(assign, strings.Join(append(top, nodes), " ")) + "\n" +
		"\telse\n\t\tcase " + cmd + " in\n" + cases.String() +
		"\t\t*) " + fmt.Sprintf(assign, "") + " ;;\n\t\tesac\n\tfi\n"
}

// fishCompletion declares each command's flags and subcommands with
// fish's complete builtin.
func fishCompletion(app *ucli.App) string {
	var b strings.Builder
	b.WriteString("# gkessh fish completion: gkessh completion fish | source\n")
	b.WriteString("complete -c gkessh -e\n")
	var names []string
	for _, cmd := range app.VisibleCommands() {
		names = append(names, cmd.Names()...)
	}
	sort.Strings(names)
	fmt.Fprintf(&b, "complete -c gkessh -n __fish_use_subcommand -f -a '%s'\n", strings.Join(names, " "))
	b.WriteString("complete -c gkessh -n __fish_use_subcommand -f -a '(gkessh __complete-nodes 2>/dev/null)'\n")
	fishFlags(&b, "__fish_use_subcommand", app.VisibleFlags())
	globalNames := firstNames(app.Flags)
	for _, cmd := range app.VisibleCommands() {
		cond := "__fish_seen_subcommand_from " + strings.Join(cmd.Names(), " ")
		var subs []string
		for _, sub := range cmd.VisibleCommands() {
			subs = append(subs, sub.Names()...)
		}
		if len(subs) > 0 {
			fmt.Fprintf(&b, "complete -c gkessh -n '%s' -f -a '%s'\n", cond, strings.Join(subs, " "))
		}
		globals, _ := honoured(app, globalNames, app.Name+" "+cmd.Name)
		fishFlags(&b, cond, append(cmd.VisibleFlags(), globals...))
	}
	return b.String()
}

func fishFlags(b *strings.Builder, cond string, flags []ucli.Flag) {
	for _, f := range flags {
		fmt.Fprintf(b, "complete -c gkessh -n '%s'", cond)
		for _, n := range f.Names() {
			if len(n) == 1 {
				fmt.Fprintf(b, " -s %s", n)
			} else {
				fmt.Fprintf(b, " -l %s", n)
			}
		}
		b.WriteString("\n")
	}
}

// powershellCompletion registers a native argument completer: the word
// after gkessh completes to commands, login flags and cached node names;
// later words to the command's flags and subcommands.
func powershellCompletion(app *ucli.App) string {
	top, cmds, after := completionWords(app)
	var cases strings.Builder
	for _, cmd := range cmds {
		for _, n := range cmd.Names() {
			fmt.Fprintf(&cases, "            '%s' { %s }\n", n, psList(after[cmd]))
		}
	}
	return "# gkessh PowerShell completion: gkessh completion powershell | Out-String | Invoke-Expression\n" +
		"Register-ArgumentCompleter -Native -CommandName gkessh, gkessh.exe -ScriptBlock {\n" +
		"    param($wordToComplete, $commandAst, $cursorPosition)\n" +
		"    $elements = @($commandAst.CommandElements | ForEach-Object { $_.ToString() })\n" +
		"    $index = if ($wordToComplete) { $elements.Count - 1 } else { $elements.Count }\n" +
		"    if ($index -le 1) {\n" +
		"        $words = " + psList(top) + " + @(gkessh __complete-nodes 2>$null)\n" +
		"    } else {\n" +
		"        $words = switch ($elements[1]) {\n" + cases.String() +
		"            default { @() }\n" +
		"        }\n" +
		"    }\n" +
		"    $words | Where-Object { $_ -like \"$wordToComplete*\" } | ForEach-Object {\n" +
		"        [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)\n" +
		"    }\n" +
		"}\n"
}

func psList(words []string) string {
	if len(words) == 0 {
		return "@()"
	}
	return "@('" + strings.Join(words, "', '") + "')"
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
