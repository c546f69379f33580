// Package cli is the gkessh command line: one file per command, each parsing
// its flags into options and calling a run function with stdio passed in.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/gkessh/gkessh/internal/auth"
	"github.com/gkessh/gkessh/internal/gce"
)

// Stdio is where a command reads and writes; tests pass pipes.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// Main runs gkessh with args (args[0] is the program name) and returns the
// process exit status.
func Main(ctx context.Context, args []string, stdio Stdio) int {
	return mainWith(ctx, args, stdio, newDeps(stdio))
}

// mainWith is Main in the world d. Each call builds its own app and flags,
// and gkessh keeps no state of its own between calls, so calls may run side
// by side: the tests run gkessh so, each with its own deps. Two Go runtime
// settings are the process's: run on many nodes changes GOGC and the proxy
// GOMAXPROCS while they run, and the last of them to end puts back what
// the first found (see setting).
func mainWith(ctx context.Context, args []string, stdio Stdio, d *deps) int {
	defer d.close()
	app := newApp(d, stdio)
	args, err := hoistFlags(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	if interrupted(ctx, err) {
		fmt.Fprintln(stdio.Err, "gkessh: interrupted")
		return exitInterrupted
	}
	login := isLogin(app, args)
	if login && err != nil {
		if code, ok := loginMistake(app, args, err, stdio.Err); ok {
			return code
		}
	}
	return report(stdio.Err, err, login)
}

// interrupted reports whether err is the command giving up because ctx,
// the process's signals, ended it: as a shell reports a process killed by
// SIGINT, that is exit 130, not a failure of gkessh's. A status a command
// chose from its nodes' results (run's, cp's) carries no such error and
// stays.
func interrupted(ctx context.Context, err error) bool {
	return ctx.Err() != nil && errors.Is(err, context.Canceled)
}

// loginMistake reports a failed login that was no login at all: gkessh
// with no NODE gets a short usage, and a NODE one edit away from a command
// name that failed before it was found (no such instance, no project, an
// unknown flag such as run's --all) is a mistyped command. Both are usage
// errors, exit 2, though a login's own are 255: nothing was logged in to.
func loginMistake(app *ucli.App, args []string, err error, w io.Writer) (int, bool) {
	node := loginNode(app, args)
	var ue usageError
	var near *nearCommandError
	switch {
	case node == "" && errors.As(err, &ue):
		fmt.Fprintf(w, "gkessh: %s\n%s", printableLines(ue.msg), shortUsage(app))
		return exitUsage, true
	case node == "" || nearCommand(node) == "":
		return 0, false
	case errors.As(err, &near), errors.As(err, &ue), errors.Is(err, gce.ErrNoProject), errors.Is(err, auth.ErrNoCredentials):
		msg := node + " is not a gkessh command"
		var none *gce.NoInstanceError
		if errors.As(err, &none) {
			msg += ", nor an instance of project " + none.Project
		}
		cmd := nearCommand(node)
		fmt.Fprintf(w, "gkessh: %s: did you mean %s?\nSee 'gkessh %s --help'.\n", printable(msg), cmd, cmd)
		return exitUsage, true
	}
	return 0, false
}

// loginNode is the NODE of hoisted login args, or "" when there is none.
func loginNode(app *ucli.App, args []string) string {
	for i := 1; i < len(args); i++ {
		switch arg := args[i]; {
		case arg == "--":
			return ""
		case len(arg) > 1 && arg[0] == '-':
			if takesValue(lookupFlag(app.Flags, flagName(arg)), arg) {
				i++
			}
		default:
			return arg
		}
	}
	return ""
}

// shortUsage is what gkessh with no NODE prints: the two forms and the
// commands, in a few lines.
func shortUsage(app *ucli.App) string {
	var names []string
	for _, c := range app.VisibleCommands() {
		names = append(names, c.Name)
	}
	return "usage: gkessh [flags] [USER@]NODE [-- COMMAND...]\n" +
		"       gkessh COMMAND [flags] ARGS...\n" +
		"commands: " + strings.Join(names, ", ") + "\n" +
		"See 'gkessh --help'.\n"
}

// action is the Action of a command whose flags and arguments values reads
// and checks into options that run then runs.
func action[O any](d *deps, stdio Stdio, values func(*ucli.Context) (O, error), run func(context.Context, O, *deps, Stdio) error) ucli.ActionFunc {
	return func(c *ucli.Context) error {
		o, err := values(c)
		if err != nil {
			return err
		}
		return run(c.Context, o, d, stdio)
	}
}

func newApp(d *deps, stdio Stdio) *ucli.App {
	app := &ucli.App{
		Name:      "gkessh",
		Usage:     "SSH to Compute Engine and GKE nodes through Identity-Aware Proxy",
		UsageText: "gkessh [flags] [USER@]NODE [-- COMMAND...]\n   gkessh COMMAND [flags] ARGS...",
		Version:   versionLine(),
		Reader:    stdio.In,
		Writer:    stdio.Out,
		ErrWriter: stdio.Err,
		// urfave's default handler calls os.Exit inside Run, skipping deferred
		// cleanup; Main maps errors to exit codes instead.
		ExitErrHandler: func(*ucli.Context, error) {},
		Metadata:       map[string]any{envKey: d.env},
		// urfave's own help command and flag are shared by every app in
		// the process and written into as they run: each command gets a
		// help flag of its own (newApp's walk), and gkessh has its own
		// help command (so "help" is never a node name).
		HideHelp:        true,
		HideHelpCommand: true,
		// -v means --verbose, as in ssh and gcloud; --version has no short form.
		HideVersion: true,
		Flags:       slices.Concat(globalFlags(), sshFlags(), []ucli.Flag{&ucli.BoolFlag{Name: "version", Usage: "print the version"}, helpFlag()}),
		Before: func(c *ucli.Context) error {
			if c.Bool("version") {
				fmt.Fprintln(stdio.Out, versionLine())
				return exitError{code: 0}
			}
			return nil
		},
		Action: action(d, stdio, sshFlagValues, runSSH),
		Commands: []*ucli.Command{
			proxyCommand(d, stdio),
			tunnelCommand(d, stdio),
			keysCommand(d, stdio),
			configSSHCommand(d, stdio),
			inventoryCommand(d, stdio),
			doctorCommand(d, stdio),
			auditCommand(d, stdio),
			runCommand(d, stdio),
			cpCommand(d, stdio),
			scpCommand(d, stdio),
			helpCommand(),
			completionCommand(stdio),
			completeNodesCommand(d, stdio),
			versionCommand(stdio),
		},
	}
	if man := manCommand(stdio); man != nil {
		app.Commands = append(app.Commands, man)
	}
	// urfave returns unknown flags and bad flag values as plain errors:
	// make them usage errors (exit 2), on every command.
	// Usage errors name their command, so that report points at its help.
	app.OnUsageError = func(_ *ucli.Context, err error, _ bool) error { return usagef("%v", err) }
	var walk func(path string, cmds []*ucli.Command)
	walk = func(path string, cmds []*ucli.Command) {
		for _, c := range cmds {
			name := strings.TrimSpace(path + " " + c.Name)
			c.HideHelp = true
			c.Flags = append(c.Flags, helpFlag())
			c.OnUsageError = func(_ *ucli.Context, err error, _ bool) error { return inCommand(name, usagef("%v", err)) }
			if act := c.Action; act != nil {
				c.Action = func(cc *ucli.Context) error { return inCommand(name, act(cc)) }
			}
			walk(name, c.Subcommands)
		}
	}
	walk("", app.Commands)
	addExamples(app)
	return app
}

// helpFlag is --help, -h: urfave shows a command's help when it is set.
func helpFlag() ucli.Flag {
	return &ucli.BoolFlag{Name: "help", Aliases: []string{"h"}, Usage: "show help"}
}

// usageError is a mistake on the command line.
type usageError struct {
	msg string
	cmd string // the command's full name, "keys list"; "" for gkessh NODE
}

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{msg: fmt.Sprintf(format, args...)} }

// inCommand names command in a usage error err.
func inCommand(command string, err error) error {
	var ue usageError
	if !errors.As(err, &ue) || ue.cmd != "" {
		return err
	}
	ue.cmd = command
	return ue
}

// exitError carries an exit status chosen by a command, such as the remote
// command's status or 255 for ssh-style failures.
type exitError struct {
	code   int
	err    error // nil when the code says it all
	remote bool  // code is the remote command's exit status
}

func (e exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e exitError) Unwrap() error { return e.err }

// The exit statuses gkessh chooses itself. A login and a proxy exit
// exitFailure for their own failures, as ssh does, so a remote command's
// status is never taken for one.
const (
	exitOther       = 1   // anything else; run's and cp's "a node's command or copy failed"
	exitUsage       = 2   // bad flags or arguments
	exitProblems    = 3   // keys list --audit --fail found problems
	exitInterrupted = 130 // stopped by Ctrl-C or SIGTERM, as shells report SIGINT
	exitFailure     = 255 // a login, proxy, run or audit that failed itself
)

// report prints err once, with a hint where one helps, and returns the exit
// status. In login mode (`gkessh NODE`) every failure of gkessh's own,
// usage errors included, exits 255 as in ssh, so a script can tell them
// from the remote command's status.
func report(w io.Writer, err error, login bool) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.code == 0 {
			return 0
		}
		if ee.err != nil {
			fmt.Fprintf(w, "gkessh: %s\n", printableLines(withHint(ee.err)))
		}
		return ee.code
	}
	var ue usageError
	if errors.As(err, &ue) {
		help := "gkessh --help"
		if ue.cmd != "" {
			help = "gkessh " + ue.cmd + " --help"
		}
		fmt.Fprintf(w, "gkessh: %s\nSee '%s'.\n", printableLines(ue.msg), help)
		if login {
			return exitFailure
		}
		return exitUsage
	}
	fmt.Fprintf(w, "gkessh: %s\n", printableLines(withHint(err)))
	return exitOther
}
