package cli

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// hoistFlags puts the arguments in the order urfave/cli reads them:
// gkessh's flags, the command path, the command's flags, its arguments.
// urfave stops reading flags at the first argument and reads each flag at
// the command it follows, while users write flags anywhere, as the usage
// lines and ssh do (`gkessh tunnel NODE 8080 --listen :9000`, `gkessh NODE
// -L 8080:localhost:80`, `gkessh --project p run ...`). So:
//   - a global flag (globalFlags) goes to gkessh itself, wherever it was
//     typed, and the command it was given to must honour it (globalsOf);
//   - any other flag goes to the command, even when typed before it
//     (`gkessh --port 2222 run`), or, when only gkessh has it (a login's
//     flag such as -L), stays there and is refused for the command;
//   - the same flag twice is one flag when the values agree, and a usage
//     error when they differ.
//
// Nothing is moved across "--". For the login, `gkessh NODE COMMAND...`,
// it stops at COMMAND as ssh does: what follows is the command's own; and
// options right after "--" are still gkessh's, since gcloud hands what
// follows "--" to ssh.
func hoistFlags(app *ucli.App, args []string) ([]string, error) {
	if len(args) == 0 {
		return args, nil
	}
	out, err := hoist(app, args[1:])
	return append([]string{args[0]}, out...), err
}

// flagArg is one flag as typed, with its value when that is the next
// argument.
type flagArg struct {
	words    []string
	name     string // without dashes and "=value"
	beforeAt int    // how many commands preceded it
}

// value is what the flag was set to, for comparing two of the same flag:
// a boolean without a value is true.
func (f flagArg) value(def ucli.Flag) string {
	v, ok := "", false
	if _, v, ok = strings.Cut(f.words[0], "="); !ok && len(f.words) > 1 {
		v, ok = f.words[1], true
	}
	if _, isBool := def.(*ucli.BoolFlag); isBool {
		if !ok {
			return "true"
		}
		if b, err := strconv.ParseBool(v); err == nil {
			return strconv.FormatBool(b)
		}
	}
	return v
}

func hoist(app *ucli.App, args []string) ([]string, error) {
	var (
		path       []*ucli.Command // the commands found, outermost first
		flags      []flagArg
		positional []string
		rest       []string // from "--", or a login's command
	)
	// dashed: a login's "--" came after NODE. gcloud passes what follows it
	// to ssh, which reads options before the command
	// (`gcloud compute ssh NODE -- -N -L ...`), so options are still read.
	dashed := false
	subs := func() []*ucli.Command {
		if len(path) == 0 {
			return app.Commands
		}
		return path[len(path)-1].Subcommands
	}
loop:
	for i := 0; i < len(args); i++ {
		arg := args[i]
		login := len(path) == 0
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
			rest = args[i:]
			break loop
		case len(arg) > 1 && arg[0] == '-':
			f := flagArg{words: []string{arg}, name: flagName(arg), beforeAt: len(path)}
			if takesValue(typedFlag(app, path, f.name), arg) && i+1 < len(args) {
				i++
				f.words = append(f.words, args[i])
			}
			flags = append(flags, f)
		case len(positional) == 0 && findCommand(subs(), arg) != nil:
			path = append(path, findCommand(subs(), arg))
		case login && len(positional) > 0:
			rest = args[i:]
			break loop
		default:
			positional = append(positional, arg)
		}
	}
	if dashed {
		rest = append([]string{"--"}, rest...)
	}
	root, local, err := placeFlags(app, path, flags)
	var names []string
	for _, c := range path {
		names = append(names, c.Name)
	}
	return slices.Concat(root, names, local, positional, rest), err
}

// placeFlags splits flags between gkessh itself (root) and the command at
// the end of path (local), keeping their order, and checks them: a global
// flag or one of gkessh's own is refused for a command that does not
// honour it, and a flag given twice with different values is refused. A
// flag given twice with the same value is kept once.
func placeFlags(app *ucli.App, path []*ucli.Command, flags []flagArg) (root, local []string, err error) {
	command := "gkessh"
	var cmd *ucli.Command
	for _, c := range path {
		command += " " + c.Name
		cmd = c
	}
	name := strings.TrimPrefix(command, "gkessh ")
	if cmd == nil {
		name = ""
	}
	type seen struct {
		words []string
		value string
	}
	first := map[ucli.Flag]seen{}
	for _, f := range flags {
		toRoot, def := true, lookupFlag(app.Flags, f.name)
		if def == nil && (cmd == nil || lookupFlag(cmd.Flags, f.name) == nil) {
			if gerr := gcloudOnlyError(f.words[0]); gerr != nil {
				err = cmp.Or(err, inCommand(name, gerr)) // and kept, as every refused flag is
			}
		}
		if global, ok := globalName[f.name]; ok {
			if cmd != nil && !honours(command, global) {
				err = cmp.Or(err, error(usageError{msg: fmt.Sprintf("%s does not take --%s", name, global), cmd: name}))
			}
		} else if cmd != nil {
			if d := lookupFlag(cmd.Flags, f.name); d != nil || def == nil {
				toRoot, def = false, d
			} else if def != nil {
				err = cmp.Or(err, error(usageError{msg: fmt.Sprintf("%s does not take %s: it is a flag of a login (gkessh NODE)", name, f.words[0]), cmd: name}))
			}
		}
		if def != nil && !isRepeatable(def) {
			v := f.value(def)
			if s, ok := first[def]; ok {
				if s.value == v {
					continue
				}
				err = cmp.Or(err, error(usageError{msg: fmt.Sprintf("%s and %s: the same flag twice, with different values; give one",
					strings.Join(s.words, " "), strings.Join(f.words, " ")), cmd: name}))
			} else {
				first[def] = seen{f.words, v}
			}
		}
		if toRoot {
			root = append(root, f.words...)
		} else {
			local = append(local, f.words...)
		}
	}
	return root, local, err
}

// flagName is the name of a flag argument: no dashes, no "=value".
func flagName(arg string) string {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	return name
}

// typedFlag is the flag that name most likely means, typed after the
// commands in path, to tell whether it takes a value: the command's (or
// gkessh's), else any command's (`gkessh --format json keys list`).
// Flags of one name agree on that (TestCommandDocs), so which of them it
// finds does not matter.
func typedFlag(app *ucli.App, path []*ucli.Command, name string) ucli.Flag {
	if len(path) > 0 {
		if f := lookupFlag(path[len(path)-1].Flags, name); f != nil {
			return f
		}
	}
	if f := lookupFlag(app.Flags, name); f != nil {
		return f
	}
	return lookupFlagBelow(app.Commands, name)
}

// lookupFlagBelow finds a flag named name in cmds or their subcommands.
func lookupFlagBelow(cmds []*ucli.Command, name string) ucli.Flag {
	for _, c := range cmds {
		if f := lookupFlag(c.Flags, name); f != nil {
			return f
		}
		if f := lookupFlagBelow(c.Subcommands, name); f != nil {
			return f
		}
	}
	return nil
}

// lookupFlag is the flag of flags with name among its names, or nil.
func lookupFlag(flags []ucli.Flag, name string) ucli.Flag {
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

// isRepeatable reports whether f may be given several times, each adding a
// value (-L, --ssh-flag).
func isRepeatable(f ucli.Flag) bool {
	_, ok := f.(*ucli.StringSliceFlag)
	return ok
}

// takesValue reports whether arg names f, a flag that needs a value, and
// does not carry it after "=".
func takesValue(f ucli.Flag, arg string) bool {
	if f == nil || strings.Contains(arg, "=") {
		return false
	}
	v, ok := f.(interface{ TakesValue() bool })
	return ok && v.TakesValue()
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
			if takesValue(lookupFlag(app.Flags, flagName(arg)), arg) {
				i++
			}
		default:
			return findCommand(app.Commands, arg) == nil
		}
	}
	return true
}
