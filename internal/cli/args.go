package cli

import (
	"slices"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// hoistFlags lets flags follow positional arguments, as the usage lines
// and ssh users write them (`gkessh tunnel NODE 8080 --listen :9000`,
// `gkessh NODE -L 8080:localhost:80`): urfave/cli stops reading flags at
// the first argument. Down the command path, it moves each command's flags
// (with their values) in front of its other arguments, up to "--". For the
// login, `gkessh NODE COMMAND...`, it stops at COMMAND as ssh does: what
// follows is the command's own; and options right after "--" are still
// gkessh's, since gcloud hands what follows "--" to ssh.
func hoistFlags(app *ucli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	return append([]string{args[0]}, hoist(app.Flags, app.Commands, true, args[1:])...)
}

func hoist(flags []ucli.Flag, cmds []*ucli.Command, login bool, args []string) []string {
	var front, positional []string
	// dashed: a login's "--" came after NODE. gcloud passes what follows it
	// to ssh, which reads options before the command
	// (`gcloud compute ssh NODE -- -N -L ...`), so options are still read.
	dashed := false
	command := func(i int) []string { // the result, with args[i:] the command
		if dashed {
			return slices.Concat(front, positional, []string{"--"}, args[i:])
		}
		return slices.Concat(front, positional, args[i:])
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case login && (arg == "--ssh-flag" || strings.HasPrefix(arg, "--ssh-flag=")):
			// gcloud's way to give ssh options: read them as gkessh's.
			value, ok := strings.CutPrefix(arg, "--ssh-flag=")
			if !ok && i+1 < len(args) {
				i++
				value = args[i]
			}
			args = slices.Concat(args[:i+1], strings.Fields(value), args[i+1:])
		case arg == "--" && login && len(positional) > 0 && !dashed:
			dashed = true
		case arg == "--":
			return command(i)
		case len(arg) > 1 && arg[0] == '-':
			front = append(front, arg)
			if takesValue(flags, arg) && i+1 < len(args) {
				i++
				front = append(front, args[i])
			}
		case len(positional) == 0 && findCommand(cmds, arg) != nil:
			sub := findCommand(cmds, arg)
			return slices.Concat(front, []string{arg}, hoist(sub.Flags, sub.Subcommands, false, args[i+1:]))
		case login && len(positional) > 0:
			return command(i)
		default:
			positional = append(positional, arg)
		}
	}
	return command(len(args))
}

// takesValue reports whether arg names one of flags that needs a value
// and does not carry it after "=".
func takesValue(flags []ucli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			v, ok := f.(interface{ TakesValue() bool })
			return ok && v.TakesValue()
		}
	}
	return false
}

func findCommand(cmds []*ucli.Command, name string) *ucli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// nodePort parses NODE [PORT] arguments.
func nodePort(args []string, defPort int, usage string) (string, int, error) {
	if len(args) == 0 || len(args) > 2 {
		return "", 0, usagef("want NODE and an optional PORT: %s", usage)
	}
	port := defPort
	if len(args) == 2 {
		if !portNumber(args[1]) || args[1] == "0" {
			return "", 0, usagef("port %q: want 1-65535", args[1])
		}
		port, _ = strconv.Atoi(args[1])
	}
	return args[0], port, nil
}

// portNumber reports whether s is a port number, 0-65535.
func portNumber(s string) bool {
	p, err := strconv.Atoi(s)
	return err == nil && p >= 0 && p <= 65535
}

// isLogin reports whether hoisted args (as hoistFlags returns them) run a
// login, `gkessh [flags] NODE ...`, rather than one of app's commands.
func isLogin(app *ucli.App, args []string) bool {
	for i := 1; i < len(args); i++ {
		switch arg := args[i]; {
		case arg == "--":
			return true
		case len(arg) > 1 && arg[0] == '-':
			if takesValue(app.Flags, arg) {
				i++
			}
		default:
			return findCommand(app.Commands, arg) == nil
		}
	}
	return true
}
