package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/broadcast"
	"github.com/gkessh/gkessh/internal/fleet"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/pollio"
	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/knownhosts"
	"github.com/gkessh/gkessh/sshclient"
	"github.com/gkessh/gkessh/tunnel"
)

// runOptions are the flags and arguments of `gkessh run`.
type runOptions struct {
	globalOptions
	keyOptions
	fleetOptions
	NoStdin bool
	Group   bool
	JSON    bool
	Command []string
}

// defaultParallel is -P's default. The issue asks for IAP's documented
// per-user connection rate; the IAP TCP-forwarding pages we could read
// (cloud.google.com/iap/docs/using-tcp-forwarding and
// tcp-forwarding-overview) document none, and we could not read a quota
// page that does, so the default stays modest, a burst of tens, not
// hundreds. 64 rather than 32: on 2 cores shared with the emulator a warm
// 1000-node run took 4-7% less time and CPU at 64 in three side-by-side
// series (docs/performance.md), and against IAP's round trips more
// logins in flight hide more latency. Raise or lower it with -P.
const defaultParallel = 64

// copyParallel is cp's -P default: a copy in flight holds its SFTP
// requests' buffers, and 10 MiB to 200 nodes peaked at 230-250 MiB at 32
// against 450-515 MiB at 64, for no time measured saved.
const copyParallel = 32

// fleetGCPercent is GOGC while running a command on many nodes.
const fleetGCPercent = 200

// fleetGC is GOGC for a run on many nodes, unless the user set it. A run
// allocates per node (tunnel, handshake, session) and keeps little alive:
// collecting when the heap is three times what survived, not twice, took
// a warm 1000-node run 7% less CPU, for a peak of 105 MiB, not 72. Not for
// cp: copies keep their buffers alive, and 200 at once peaked at ~260 MiB
// instead of ~180 for no CPU saved. Held for the run only: the binary
// exits right after, and Main run side by side gets its GOGC back.
var fleetGC = &setting{to: fleetGCPercent, set: debug.SetGCPercent}

func runCommand(d *deps, stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:      "run",
		Usage:     "run one command on many nodes at once",
		ArgsUsage: "(NODE... | --all | --filter EXPR | --cluster NAME [--pool NAME]) -- COMMAND...",
		Description: "Writes your key to project metadata at most once for the whole run (and to the own metadata of\n" +
			"nodes that block project keys; nodes under OS Login get it through your OS Login profile, imported\n" +
			"once, and are logged in to as its POSIX user), pins every node's host keys, and runs COMMAND on up to -P nodes\n" +
			"at a time through IAP. stdin is sent to every node as it arrives. Each output line starts with\n" +
			"the node's name. Exit status: 0 every node exited 0, 1 a command failed, 255 a node could not\n" +
			"be reached, 130 interrupted. Nodes that match but are not RUNNING are listed as skipped.",
		Flags: append(fleetFlags(defaultParallel),
			&ucli.BoolFlag{Name: "no-stdin", Usage: "do not read stdin; the commands get none"},
			&ucli.BoolFlag{Name: "group", Usage: "print each node's output as one block when it finishes"},
			formatFlag("one object per node"),
			outputFlag(),
		),
		Action: action(d, stdio, runFlagValues, runRun),
	}
}

func runFlagValues(c *ucli.Context) (runOptions, error) {
	k, err := keyFlagValues(c)
	if err != nil {
		return runOptions{}, err
	}
	f, err := fleetFlagValues(c)
	if err != nil {
		return runOptions{}, err
	}
	o := runOptions{
		globalOptions: globals(c),
		keyOptions:    k,
		fleetOptions:  f,
		NoStdin:       c.Bool("no-stdin"),
		Group:         c.Bool("group"),
	}
	if o.JSON, err = formatJSON(c); err != nil {
		return o, err
	}
	if o.Group && o.JSON {
		return o, usagef("--group and --format json: pick one")
	}
	// urfave keeps "--" only when arguments come before it: NODE... -- CMD.
	// With a set selector and no "--" every argument is the command.
	args := c.Args().Slice()
	if i := slices.Index(args, "--"); i >= 0 {
		o.Names, o.Command = args[:i], args[i+1:]
	} else if selectorSet(o.Selector) {
		o.Command = args
	} else {
		return o, usagef("give NODE... -- COMMAND, or --all, --filter, --cluster or --pool and -- COMMAND")
	}
	if err := checkSelector(o.Selector); err != nil {
		return o, err
	}
	if len(o.Command) == 0 {
		return o, usagef("no command: gkessh run ... -- COMMAND")
	}
	return o, nil
}

// fleetOptions are what the commands that work on many nodes share: the
// selection, the access path's checks and the pace.
type fleetOptions struct {
	fleet.Selector
	Strict             knownhosts.StrictMode
	PropagationTimeout time.Duration
	Port               int
	Parallel           int
	Timeout            time.Duration
	FailFast           bool
}

// fleetFlags are fleetOptions' flags, with parallel -P's default.
func fleetFlags(parallel int) []ucli.Flag {
	return append(selectorFlags(), propagationFlag(),
		&ucli.IntFlag{Name: "parallel", Aliases: []string{"P"}, Value: parallel, Usage: "work on up to `N` nodes at a time"},
		&ucli.DurationFlag{Name: "timeout", Usage: "give up on a node after this long, from dial to the end (0: never)"},
		&ucli.BoolFlag{Name: "fail-fast", Usage: "start no new node after the first one fails"},
		&ucli.IntFlag{Name: "port", Value: 22, Usage: "the nodes' SSH port"},
	)
}

// fleetFlagValues reads and checks fleetFlags; the caller adds and checks
// the node names.
func fleetFlagValues(c *ucli.Context) (fleetOptions, error) {
	o := fleetOptions{
		Selector:           selectorFlagValues(c),
		PropagationTimeout: c.Duration("propagation-timeout"),
		Port:               c.Int("port"),
		Parallel:           c.Int("parallel"),
		Timeout:            c.Duration("timeout"),
		FailFast:           c.Bool("fail-fast"),
	}
	var err error
	if o.Strict, err = strictFlagValue(c, knownhosts.StrictAcceptNew); err != nil {
		return o, err
	}
	if o.Parallel < 1 {
		return o, usagef("-P %d: want at least 1", o.Parallel)
	}
	if o.Timeout < 0 || o.PropagationTimeout <= 0 {
		return o, usagef("--timeout and --propagation-timeout want positive durations")
	}
	if err := checkPort(o.Port); err != nil {
		return o, err
	}
	return o, nil
}

// checkSelector checks that the nodes are chosen one way, and the names,
// zone and labels, which go into API paths, the filter and messages.
func checkSelector(s fleet.Selector) error {
	if err := checkSelection(s); err != nil {
		return err
	}
	for _, n := range s.Names {
		if user, node, ok := strings.Cut(n, "@"); ok && user != "" && gce.CheckName(node) == nil {
			return usagef("%s: name the node alone and the user with --user %s", printable(n), printable(user))
		}
		if err := gce.CheckName(n); err != nil {
			return usagef("%v", err)
		}
	}
	if s.Zone != "" {
		if err := gce.CheckZone(s.Zone); err != nil {
			return usagef("--zone: %v", err)
		}
	}
	for _, l := range []struct{ flag, key, value string }{{"--cluster", fleet.LabelCluster, s.Cluster}, {"--pool", fleet.LabelPool, s.Pool}} {
		if l.value == "" {
			continue
		}
		if err := gce.CheckLabel(l.key, l.value); err != nil {
			return usagef("%s: %v", l.flag, err)
		}
	}
	return nil
}

// runRun selects the nodes, runs the command on them and reports.
func runRun(ctx context.Context, o runOptions, d *deps, stdio Stdio) error {
	err := runFleet(ctx, o, d, stdio)
	var ue usageError
	var ee exitError
	if err == nil || errors.As(err, &ue) || errors.As(err, &ee) {
		return err
	}
	return exitError{code: exitFailure, err: err}
}

func runFleet(ctx context.Context, o runOptions, d *deps, stdio Stdio) error {
	if o.DryRun {
		return runDryRun(ctx, o, d, stdio)
	}
	f, err := startFleet(ctx, o.globalOptions, o.keyOptions, o.fleetOptions, d, stdio)
	if err != nil {
		return err
	}
	defer f.close()
	if _, set := d.env("GOGC"); !set && len(f.sel.Run) > 1 {
		defer fleetGC.hold()()
	}
	out := newRunOutput(stdio, o, append(nodeNames(f.sel.Run), resultNames(f.sel.Unreachable)...))
	for _, inst := range f.sel.Skipped {
		out.skipped(inst)
	}
	for _, res := range f.sel.Unreachable {
		out.done(res)
	}
	if !o.NoStdin && !isTerminalReader(stdio.In) && stdio.In != nil {
		b, stop := broadcastStdin(stdio.In, len(f.sel.Run))
		defer stop()
		f.cfg.Stdin = func() io.ReadCloser { return b.Open() }
	}
	f.cfg.Command = sshclient.CommandLine(o.Command)
	f.cfg.Output, f.cfg.Done = out.writers, out.done
	results, err := fleet.Run(ctx, f.cfg, f.sel.Run)
	out.stopProgress()
	if err != nil {
		return err
	}
	results = append(f.sel.Unreachable, results...)
	fmt.Fprintln(stdio.Err, f.summary(results))
	return exitStatus(results)
}

// runDryRun says what run would write and run, on which nodes as whom,
// and changes nothing: no key pair, metadata line, OS Login import,
// pinned host key or zone cache entry, no tunnel; stdin is not read.
func runDryRun(ctx context.Context, o runOptions, d *deps, stdio Stdio) error {
	a, sel, err := openDryRun(ctx, o.globalOptions, o.keyOptions, o.Strict, o.Selector, d, stdio)
	if err != nil {
		return filterUsage(err, false)
	}
	defer a.Close()
	command := sshclient.CommandLine(o.Command)
	return dryRunFleet(ctx, a, sel, o.keyOptions, d, stdio.Out, stdio.Err, "run", func(p *access.Plan) string {
		return fmt.Sprintf("would run %q as %s through an IAP tunnel to port %d", command, printable(p.User), o.Port)
	})
}

// fleetStart is a fleet command's nodes, selected, and the fleet.Config
// that reaches them through one Access: the caller adds what to do on
// each and how to show it.
type fleetStart struct {
	sel      fleet.Selection
	cfg      fleet.Config
	close    func() error
	throttle throttling
}

// summary is the fleet's last line: runSummary and what throttled it.
func (f *fleetStart) summary(results []fleet.Result) string {
	return runSummary(results, f.sel.Skipped) + f.throttle.String()
}

// startFleet selects the nodes and prepares the access path to them: the
// one key write, the IAP dial, the grant notices on stderr. Instances the
// API listed with invalid names are reported and left out.
func startFleet(ctx context.Context, g globalOptions, k keyOptions, o fleetOptions, d *deps, stdio Stdio) (*fleetStart, error) {
	logf := d.logger(g.Verbose)
	a, err := newAccess(ctx, g, k, d, stdio, accessOptions{Strict: o.Strict, Quiet: true})
	if err != nil {
		return nil, err
	}
	f := &fleetStart{close: a.Close}
	// Select first: with no node to log into, no key is made.
	f.sel, f.cfg, err = selectFleet(ctx, a, o, d, g, &f.throttle)
	var kp *keys.KeyPair
	if err == nil && len(f.sel.Run) > 0 {
		kp, err = a.Key()
	}
	if err != nil {
		a.Close()
		return nil, err
	}
	for _, err := range f.sel.Invalid {
		fmt.Fprintf(stdio.Err, "gkessh: skipping an instance: %v\n", err)
	}
	if limit, files := fleet.ParallelLimit(); limit > 0 && o.Parallel > limit && len(f.sel.Run) > limit {
		fmt.Fprintf(stdio.Err, "gkessh: working on %d nodes at a time, not %d: the open-file limit is %d (ulimit -n)\n", limit, o.Parallel, files)
	}
	f.cfg.Granted = func(p *access.Plan, g *access.Granted, nodes int) {
		fmt.Fprintln(stdio.Err, grantNotice(p, g, kp.Public, nodes))
	}
	if kp != nil && kp.Created {
		logf("new key %s", kp.Path)
	}
	return f, nil
}

func selectFleet(ctx context.Context, a *access.Access, o fleetOptions, d *deps, g globalOptions, t *throttling) (fleet.Selection, fleet.Config, error) {
	c, err := a.Compute(ctx)
	if err != nil {
		return fleet.Selection{}, fleet.Config{}, err
	}
	t.api = c.RateLimited
	sel, err := fleet.Select(ctx, c, o.Selector)
	if err != nil {
		return sel, fleet.Config{}, filterUsage(err, false)
	}
	dl, err := d.iapDialer(ctx, g)
	if err != nil {
		return sel, fleet.Config{}, err
	}
	dl.Throttled = t.tunnel
	// Many tunnels at once, most moving a few KiB, hold small buffers; one
	// node's (a copy's bulk data) keeps the full ones.
	dl.Light = len(sel.Run) > 1
	return sel, fleet.Config{
		Access: a,
		Dial: func(ctx context.Context, inst *gce.Instance) (net.Conn, error) {
			return dl.DialContext(ctx, tunnel.Target{Project: c.ProjectID, Zone: gce.ZoneName(inst.Zone), Instance: inst.Name, Port: o.Port})
		},
		PropagationTimeout: o.PropagationTimeout,
		Parallel:           o.Parallel, Timeout: o.Timeout, FailFast: o.FailFast,
	}, nil
}

// exitStatus is 255 when a node could not be reached, else 1 when a command
// failed, else 130 when interrupted, else 0. Skipped nodes do not count.
// The order of results does not matter.
func exitStatus(results []fleet.Result) error {
	seen := map[fleet.Status]bool{}
	for _, r := range results {
		seen[r.Status] = true
	}
	switch {
	case seen[fleet.Unreachable]:
		return exitError{code: exitFailure}
	case seen[fleet.Failed]:
		return exitError{code: exitOther}
	case seen[fleet.Cancelled]:
		return exitError{code: exitInterrupted}
	}
	return nil
}

func nodeNames(insts []*gce.Instance) []string {
	names := make([]string, len(insts))
	for i, in := range insts {
		names[i] = in.Name
	}
	return names
}

func resultNames(rs []fleet.Result) []string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Node
	}
	return names
}

// broadcastStdin sends in to n nodes as it arrives, at the pace of the
// slowest (see broadcast). A pipe is read through a pollable twin, so stop
// can interrupt a read still waiting for data (`sleep 30 | gkessh run`),
// and is put back as it was.
func broadcastStdin(in io.Reader, n int) (b *broadcast.Broadcaster, stop func()) {
	restore := func() {}
	if f, ok := in.(*os.File); ok {
		if twin, put := pollio.Pollable(f, 0); twin != nil {
			in, restore = twin, put
		}
	}
	b = broadcast.New(in, n, 0)
	return b, func() {
		b.Close()
		restore()
	}
}

// runSummary is the last line of a run, e.g. "50 nodes: 48 ok, 1 exited 3
// (gke-a), 1 unreachable (gke-b: firewall closed for 35.235.240.0/20)",
// escaped: names, statuses and reasons come from the API and the nodes.
func runSummary(results []fleet.Result, skipped []*gce.Instance) string {
	var ok int
	byExit := map[int][]string{}
	var exits []int
	var other = map[fleet.Status][]string{}
	for _, r := range results {
		switch {
		case r.Status == fleet.OK:
			ok++
		case r.Status == fleet.Failed && r.Err == nil:
			if _, seen := byExit[r.Exit]; !seen {
				exits = append(exits, r.Exit)
			}
			byExit[r.Exit] = append(byExit[r.Exit], r.Node)
		default:
			other[r.Status] = append(other[r.Status], r.Node+": "+shortReason(r.Err))
		}
	}
	for _, in := range skipped {
		other[fleet.Skipped] = append(other[fleet.Skipped], in.Name+": "+in.Status)
	}
	total := len(results) + len(skipped)
	parts := []string{fmt.Sprintf("%d ok", ok)}
	slices.Sort(exits)
	for _, code := range exits {
		parts = append(parts, fmt.Sprintf("%d exited %d (%s)", len(byExit[code]), code, listSome(byExit[code])))
	}
	for _, st := range []fleet.Status{fleet.Failed, fleet.Unreachable, fleet.Cancelled, fleet.Skipped} {
		if l := other[st]; len(l) > 0 {
			parts = append(parts, fmt.Sprintf("%d %s (%s)", len(l), st, listSome(l)))
		}
	}
	noun := "nodes"
	if total == 1 {
		noun = "node"
	}
	return printable(fmt.Sprintf("%d %s: %s", total, noun, strings.Join(parts, ", ")))
}

// listSome joins up to a few items, saying how many more there are.
func listSome(items []string) string {
	const some = 5
	if len(items) <= some {
		return strings.Join(items, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(items[:some], "; "), len(items)-some)
}

// shortReason says in a few words why a node is not OK, for the summary
// and the node's own line; the full error is in --format json and -v.
func shortReason(err error) string {
	var (
		ce *tunnel.CloseError
		nr *fleet.NotRunningError
		he *knownhosts.HostKeyError
		kr *sshclient.KeyRefusedError
		az *gce.AmbiguousZoneError
		ni *gce.NoInstanceError
	)
	switch {
	case errors.As(err, &ni) && len(ni.Near) > 0:
		return "no such instance in " + ni.Where() + ": " + hint(err)
	case errors.As(err, &ni):
		return "no such instance in " + ni.Where()
	case errors.As(err, &az):
		return fmt.Sprintf("in several zones (%s): pass --zone", strings.Join(az.Zones, ", "))
	case err == nil:
		return "no reason given"
	case errors.As(err, &ce) && ce.Code == tunnel.CodeFailedToConnectToBackend:
		return fmt.Sprintf("IAP cannot reach port %d: firewall closed for 35.235.240.0/20, VM stopped or sshd down", ce.Port)
	case errors.As(err, &ce) && ce.Code == tunnel.CodeNotAuthorized:
		return "IAP refused: you lack roles/iap.tunnelResourceAccessor"
	case errors.As(err, &ce) && ce.Code == tunnel.CodeLookupFailed:
		return "IAP found no such instance"
	case errors.As(err, &nr):
		return nr.Status + ", not RUNNING"
	case errors.As(err, &he) && len(he.Want) > 0:
		return "host key changed (see gkessh NODE for details)"
	case errors.As(err, &he):
		return "host key unknown"
	case errors.As(err, &kr):
		return "key refused"
	}
	return err.Error()
}
