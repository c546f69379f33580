package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/fleet"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/sftpcopy"
)

// cpOptions are the flags and arguments of `gkessh cp` (and `gkessh scp`).
type cpOptions struct {
	globalOptions
	keyOptions
	fleetOptions
	Recursive bool
	Preserve  bool
	JSON      bool
	// InternalIP dials each node's internal IP instead of IAP.
	InternalIP bool
	Spec       copySpec
	// Ignored are gcloud flags taken for its command lines' sake that
	// change nothing here, each with why.
	Ignored []string
}

func cpCommand(d *deps, stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:      "cp",
		Usage:     "copy files to or from nodes over SFTP, one node or many",
		ArgsUsage: "[-r] [-p] SRC... DST, one side [USER@]NODE:PATH, or :PATH with --all, --filter, --cluster or --pool",
		Description: "Copies as gcloud compute scp does, through the same IAP tunnel and key as a login, with no\n" +
			"OpenSSH needed: SFTP on gkessh's own SSH client. Either SRC... or DST is on a node: NODE:PATH,\n" +
			"USER@NODE:PATH, or NODE: for the home directory. Each file is written under a temporary name\n" +
			"beside its destination and renamed into place, so a failed or cut copy never leaves half a file.\n\n" +
			"With --all, --filter, --cluster or --pool, :PATH is PATH on every selected node: LOCAL... :REMOTE\n" +
			"pushes to each, and :REMOTE... LOCALDIR pulls each node's copy into LOCALDIR/NODE/. The key is\n" +
			"written once for all of them, up to -P nodes copy at a time, and each node gets a result line.\n\n" +
			"A progress line shows on a terminal. Exit status: 0 copied everywhere, 1 a copy failed, 255 a\n" +
			"node could not be reached, 2 usage.",
		Flags:  cpFlags(),
		Action: action(d, stdio, cpFlagValues, runCp),
	}
}

// scpCommand is cp under gcloud compute scp's name, so its command lines
// work with gkessh in place of gcloud compute.
func scpCommand(d *deps, stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:      "scp",
		Usage:     "gcloud compute scp's command line: gkessh cp",
		ArgsUsage: "[--recurse] SRC... DST, one side [USER@]NODE:PATH",
		Description: "gkessh cp under gcloud's name: --recurse, --zone, --tunnel-through-iap, --internal-ip, --port and the key\n" +
			"flags work as in gcloud compute scp; --compress and --scp-flag are accepted and noted. See\n" +
			"gkessh cp --help.",
		Flags:  cpFlags(),
		Action: action(d, stdio, cpFlagValues, runCp),
	}
}

func cpFlags() []ucli.Flag {
	return append(fleetFlags(copyParallel),
		&ucli.BoolFlag{Name: "recurse", Aliases: []string{"r", "recursive"}, Usage: "copy directories with their contents"},
		&ucli.BoolFlag{Name: "preserve", Aliases: []string{"p"}, Usage: "keep modes and access and modification times"},
		formatFlag("one object per node (with a selection)"),
		&ucli.BoolFlag{Name: "tunnel-through-iap", Usage: "the default; accepted so gcloud command lines work"},
		&ucli.BoolFlag{Name: "internal-ip", Usage: "connect to each node's internal IP directly instead of through IAP (over a VPN, or from a VM in the same VPC network)"},
		&ucli.BoolFlag{Name: "compress", Usage: "gcloud's; accepted and noted: gkessh's SSH has no compression"},
		&ucli.StringSliceFlag{Name: "scp-flag", Usage: "gcloud's; accepted and noted: there is no scp to pass it to"},
	)
}

func cpFlagValues(c *ucli.Context) (cpOptions, error) {
	k, err := keyFlagValues(c)
	if err != nil {
		return cpOptions{}, err
	}
	f, err := fleetFlagValues(c)
	if err != nil {
		return cpOptions{}, err
	}
	o := cpOptions{globalOptions: globals(c), keyOptions: k, fleetOptions: f,
		Recursive: c.Bool("recurse"), Preserve: c.Bool("preserve"), InternalIP: c.Bool("internal-ip")}
	if o.InternalIP && c.Bool("tunnel-through-iap") {
		return o, usagef("--internal-ip and --tunnel-through-iap: pick one")
	}
	if o.JSON, err = formatJSON(c); err != nil {
		return o, err
	}
	if c.Bool("compress") {
		o.Ignored = append(o.Ignored, "--compress: gkessh's SSH client has no compression; the bytes go as they are")
	}
	if fl := c.StringSlice("scp-flag"); len(fl) > 0 {
		o.Ignored = append(o.Ignored, fmt.Sprintf("--scp-flag %s: gkessh copies over SFTP itself, with no scp to pass flags to", printable(strings.Join(fl, " "))))
	}
	if o.Spec, err = parseCopyArgs(c.Args().Slice(), runtime.GOOS == "windows"); err != nil {
		return o, err
	}
	switch {
	case o.Spec.Node == "" && !selectorSet(o.Selector):
		return o, usagef(":PATH is on every selected node: add --all, --filter, --cluster or --pool, or write NODE:PATH")
	case o.Spec.Node != "" && selectorSet(o.Selector):
		return o, usagef("%s: with --all, --filter, --cluster or --pool write :PATH, the same path on every node", printable(o.Spec.Node))
	case o.Spec.Node != "":
		o.Names = []string{o.Spec.Node}
	}
	if o.Spec.User != "" {
		if c.IsSet("user") && o.Spec.User != o.User {
			return o, usagef("user %q differs from --user %q", o.Spec.User, o.User)
		}
		o.User = o.Spec.User
	}
	if o.User != "" {
		if err := checkUser("user", o.User); err != nil {
			return o, err
		}
	}
	if err := checkSelector(o.Selector); err != nil {
		return o, err
	}
	return o, nil
}

// runCp copies, on one node or on each selected node, through the fleet's
// access path: one key write, host keys pinned, then SFTP on the login.
func runCp(ctx context.Context, o cpOptions, d *deps, stdio Stdio) error {
	for _, n := range o.Ignored {
		fmt.Fprintf(stdio.Err, "gkessh: ignoring %s\n", n)
	}
	do := copyNodes
	if o.DryRun {
		do = copyDryRun
	}
	err := do(ctx, o, d, stdio)
	var ue usageError
	var ee exitError
	if err == nil || errors.As(err, &ue) || errors.As(err, &ee) {
		return err
	}
	return exitError{code: exitFailure, err: err}
}

func copyNodes(ctx context.Context, o cpOptions, d *deps, stdio Stdio) error {
	single := len(o.Names) == 1
	f, err := startFleet(ctx, o.globalOptions, o.keyOptions, o.fleetOptions, d, stdio)
	if err != nil {
		return err
	}
	defer f.close()
	if o.InternalIP {
		f.cfg.Dial = func(ctx context.Context, inst *gce.Instance) (net.Conn, error) {
			dial, err := internalDialer(inst, inst.Name, o.Port)
			if err != nil {
				return nil, err
			}
			return dial(ctx)
		}
	}
	if single {
		if len(f.sel.Unreachable) > 0 {
			return f.sel.Unreachable[0].Err
		}
		// As a login: a grant is news only when something was written.
		notice, logf := f.cfg.Granted, d.logger(o.Verbose)
		f.cfg.Granted = func(p *access.Plan, g *access.Granted, nodes int) {
			if g.Wrote {
				notice(p, g, nodes)
			} else {
				logf("%s's key is already in %s", p.User, grantedWhere(g, p.Node.Name))
			}
		}
	}
	names := append(nodeNames(f.sel.Run), resultNames(f.sel.Unreachable)...)
	out := newCpOutput(stdio.Out, isTerminal(stdio.Out), o.JSON, !single, names)
	inFlight := sftpcopy.InFlight(min(f.cfg.Parallel, len(f.sel.Run)))
	var mu sync.Mutex
	copied := map[string]sftpcopy.Result{}
	report := func(r fleet.Result) {
		mu.Lock()
		c := copied[r.Node]
		mu.Unlock()
		notes(stdio.Err, c)
		if !single {
			out.done(r, c)
		}
	}
	for _, r := range f.sel.Unreachable {
		report(r)
	}
	f.cfg.Done = report
	f.cfg.Use = func(ctx context.Context, inst *gce.Instance, client *ssh.Client) error {
		res, err := copyOne(ctx, o, client, inst.Name, single, inFlight, out)
		mu.Lock()
		copied[inst.Name] = res
		mu.Unlock()
		return err
	}
	results, err := fleet.Run(ctx, f.cfg, f.sel.Run)
	out.stop()
	if err != nil {
		return err
	}
	if single {
		// No summary to carry it: a throttled copy says so on its own.
		if th := f.throttle.String(); th != "" {
			fmt.Fprintf(stdio.Err, "gkessh: %s\n", strings.TrimPrefix(th, "; "))
		}
		if r := results[0]; r.Status != fleet.OK {
			return exitError{code: exitCode(r), err: r.Err}
		}
		return nil
	}
	results = append(f.sel.Unreachable, results...)
	fmt.Fprintln(stdio.Err, f.summary(results))
	return exitStatus(results)
}

// exitCode is a single node's exit status, as exitStatus gives a fleet's.
func exitCode(r fleet.Result) int {
	if err := exitStatus([]fleet.Result{r}); err != nil {
		return err.(exitError).code
	}
	return 0
}

// copyOne copies on one node's login: into LOCALDIR/NODE for a fleet pull.
func copyOne(ctx context.Context, o cpOptions, client *ssh.Client, node string, single bool, inFlight int, out *cpOutput) (sftpcopy.Result, error) {
	sc, err := sftpcopy.Open(ctx, client, node, inFlight)
	if err != nil {
		return sftpcopy.Result{}, err
	}
	defer sc.Close()
	opts := sftpcopy.Options{Recursive: o.Recursive, Preserve: o.Preserve,
		Progress: func(p sftpcopy.Progress) { out.update(node, p) }}
	if o.Spec.Push {
		return sc.Push(ctx, o.Spec.Sources, o.Spec.Dest, opts)
	}
	if single {
		return sc.Pull(ctx, o.Spec.Sources, o.Spec.Dest, opts)
	}
	// Each node's copy goes into LOCALDIR/NODE, made as needed (the name
	// passed gce.CheckName in fleet.Select: one path element); a pull that
	// brought nothing leaves no empty directory behind.
	dst := filepath.Join(o.Spec.Dest, node)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return sftpcopy.Result{}, err
	}
	res, err := sc.Pull(ctx, o.Spec.Sources, dst, opts)
	if err != nil {
		os.Remove(dst) // only if empty
	}
	return res, err
}

// copyDryRun says what the copy would do, from the listing and the plans,
// and changes nothing: no key is made or written, no node is connected to,
// no file is written on either side. It says each key write once (a
// project's for the whole fleet), then each node's copy. Local sources of
// a push must exist, as the copy would need them.
func copyDryRun(ctx context.Context, o cpOptions, d *deps, stdio Stdio) error {
	if o.Spec.Push {
		for _, src := range o.Spec.Sources {
			fi, err := os.Stat(src)
			if err != nil {
				return err
			}
			if fi.IsDir() && !o.Recursive {
				return fmt.Errorf("%s: %w", src, sftpcopy.ErrIsDirectory)
			}
		}
	}
	a, sel, err := openDryRun(ctx, o.globalOptions, o.keyOptions, o.Strict, o.Selector, d, stdio)
	if err != nil {
		return err
	}
	defer a.Close()
	if len(o.Names) == 1 && len(sel.Unreachable) > 0 {
		return sel.Unreachable[0].Err
	}
	return dryRunFleet(ctx, a, sel, o.keyOptions, d, stdio.Out, stdio.Err, "copy", func(p *access.Plan) string {
		return "would copy " + printable(describeCopy(o, p.Inst))
	})
}

// describeCopy is what copyOne would copy on inst, where to and by which
// route.
func describeCopy(o cpOptions, inst *gce.Instance) string {
	route := fmt.Sprintf("through an IAP tunnel to port %d", o.Port)
	if o.InternalIP {
		route = fmt.Sprintf("directly to port %d of its internal IP", o.Port)
		if len(inst.NetworkInterfaces) > 0 && inst.NetworkInterfaces[0].NetworkIP != "" {
			route = "directly to " + net.JoinHostPort(inst.NetworkInterfaces[0].NetworkIP, strconv.Itoa(o.Port))
		}
	}
	if o.Spec.Push {
		return fmt.Sprintf("%s to %s:%s %s", strings.Join(o.Spec.Sources, " "), inst.Name, o.Spec.Dest, route)
	}
	dst := o.Spec.Dest
	if len(o.Names) != 1 {
		dst = filepath.Join(dst, inst.Name) + string(filepath.Separator)
	}
	srcs := make([]string, len(o.Spec.Sources))
	for i, s := range o.Spec.Sources {
		srcs[i] = inst.Name + ":" + s
	}
	return fmt.Sprintf("%s into %s %s", strings.Join(srcs, " "), dst, route)
}
