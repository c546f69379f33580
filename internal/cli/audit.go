package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/audit"
	"github.com/gkessh/gkessh/internal/fleet"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/knownhosts"
	"github.com/gkessh/gkessh/tunnel"
)

// auditOptions are the flags and arguments of `gkessh audit`.
type auditOptions struct {
	globalOptions
	keyOptions
	fleet.Selector
	Strict             knownhosts.StrictMode
	PropagationTimeout time.Duration
	Parallel           int
	NoProbe            bool
	JSON               bool
	FailOn             audit.Severity
}

func auditCommand(d *deps, stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:      "audit",
		Usage:     "check GKE nodes for exposed kubelet ports, reachable sshd and sudo-granting keys",
		ArgsUsage: "[NODE... | --all | --filter EXPR | --cluster NAME [--pool NAME]]",
		Description: "Judges each node's kubelet read-only port (kubelet-config and a live GET through the node's\n" +
			"sshd), who reaches its sshd (pods, the internet, IAP) by the firewall rules, the metadata keys\n" +
			"that grant sudo, and a node's own enable-oslogin=false that overrides the project's OS Login\n" +
			"(a node under OS Login is left to IAM). Live checks log in with one key write for\n" +
			"the whole audit (an expiring line) and only read: audit changes no node. Each finding has a\n" +
			"severity, nodes, evidence and a fix. Exit status: 0, or 1 when a finding reaches --fail-on;\n" +
			"255 when the audit itself failed.",
		Flags: append(selectorFlags(),
			propagationFlag(),
			&ucli.IntFlag{Name: "parallel", Aliases: []string{"P"}, Value: 16, Usage: "probe up to `N` nodes at a time"},
			&ucli.BoolFlag{Name: "no-probe", Usage: "judge from the API alone: no login, no live checks"},
			formatFlag("the report as one object"),
			&ucli.StringFlag{Name: "fail-on", Value: "high", Usage: "exit 1 when a finding is at least this severe: high, medium or low"},
		),
		Action: action(d, stdio, auditFlagValues, runAudit),
	}
}

func auditFlagValues(c *ucli.Context) (auditOptions, error) {
	k, err := keyFlagValues(c)
	if err != nil {
		return auditOptions{}, err
	}
	o := auditOptions{
		globalOptions: globals(c), keyOptions: k,
		Selector:           selectorFlagValues(c),
		PropagationTimeout: c.Duration("propagation-timeout"),
		Parallel:           c.Int("parallel"),
		NoProbe:            c.Bool("no-probe"),
	}
	if o.JSON, err = formatJSON(c); err != nil {
		return o, err
	}
	switch f := c.String("fail-on"); f {
	case "high", "medium", "low":
		o.FailOn, _ = audit.ParseSeverity(f)
	default:
		return o, usagef("--fail-on %q: want high, medium or low", f)
	}
	if o.Strict, err = strictFlagValue(c, knownhosts.StrictAcceptNew); err != nil {
		return o, err
	}
	o.Names = c.Args().Slice()
	if err := checkSelection(o.Selector); err != nil {
		return o, err
	}
	if o.Parallel < 1 {
		return o, usagef("-P %d: want at least 1", o.Parallel)
	}
	return o, nil
}

// runAudit audits and reports; a finding at --fail-on or worse is exit 1,
// a failed audit 255.
func runAudit(ctx context.Context, o auditOptions, d *deps, stdio Stdio) error {
	rep, wrote, err := auditNodes(ctx, o, d, stdio)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return err
		}
		return exitError{code: exitFailure, err: err}
	}
	if o.JSON {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		writeAuditTable(stdio.Out, rep)
	}
	changed := "no node was changed"
	if o.DryRun {
		changed = "--dry-run: no key line was written and no node logged in to"
	}
	switch len(wrote) {
	case 0:
	case 1:
		changed = "one expiring key line was written, to " + wrote[0]
	default:
		changed = fmt.Sprintf("%d expiring key lines were written, to %s", len(wrote), listSome(wrote))
	}
	fmt.Fprintf(stdio.Err, "gkessh: audited %s, %d checked live (the checks only read; %s)", plural(len(rep.Nodes), "node"), rep.Probed, changed)
	for _, u := range rep.Unprobed {
		fmt.Fprintf(stdio.Err, "\ngkessh: %s: not checked live: %s", printable(u.Node), printable(u.Error))
	}
	fmt.Fprintln(stdio.Err)
	if w, any := audit.Worst(rep.Findings); any && w >= o.FailOn {
		return exitError{code: exitOther}
	}
	return nil
}

// auditNodes audits the selected nodes; wrote says where the live checks
// wrote a key line.
func auditNodes(ctx context.Context, o auditOptions, d *deps, stdio Stdio) (rep *audit.Report, wrote []string, err error) {
	c, err := d.compute(ctx, o.globalOptions)
	if err != nil {
		return nil, nil, err
	}
	sel, err := fleet.Select(ctx, c, o.Selector)
	if err != nil {
		return nil, nil, filterUsage(err, false)
	}
	for _, r := range sel.Unreachable {
		return nil, nil, fmt.Errorf("%s: %v", r.Node, r.Err)
	}
	cfg := audit.Config{Compute: c, Now: d.now()}
	if o.DryRun && !o.NoProbe {
		// The API's findings, and what the live checks would write and
		// where they would log in: no key line, no login.
		a, err := newAccess(ctx, o.globalOptions, o.keyOptions, d, stdio, accessOptions{Strict: o.Strict, DryRun: true, Quiet: true, NoOSLogin: true})
		if err != nil {
			return nil, nil, err
		}
		defer a.Close()
		err = dryRunFleet(ctx, a, sel, o.keyOptions, d, stdio.Err, stdio.Err, "check live", func(p *access.Plan) string {
			return fmt.Sprintf("would log in as %s through an IAP tunnel to port 22 and check its kubelet's read-only port and sshd (reading only)", printable(p.User))
		})
		if err != nil {
			return nil, nil, err
		}
	}
	if !o.NoProbe && !o.DryRun {
		a, err := newAccess(ctx, o.globalOptions, o.keyOptions, d, stdio, accessOptions{Strict: o.Strict, Quiet: true, NoOSLogin: true})
		if err != nil {
			return nil, nil, err
		}
		defer a.Close()
		kp, err := a.Key()
		if err != nil {
			return nil, nil, err
		}
		dl, err := d.iapDialer(ctx, o.globalOptions)
		if err != nil {
			return nil, nil, err
		}
		cfg.Key = kp.Public
		var mu sync.Mutex
		cfg.Fleet = fleet.Config{
			Access: a,
			Dial: func(ctx context.Context, inst *gce.Instance) (net.Conn, error) {
				return dl.DialContext(ctx, tunnel.Target{Project: c.ProjectID, Zone: gce.ZoneName(inst.Zone), Instance: inst.Name, Port: 22})
			},
			PropagationTimeout: o.PropagationTimeout,
			Parallel:           o.Parallel, Timeout: o.PropagationTimeout + time.Minute,
			Granted: func(p *access.Plan, g *access.Granted, nodes int) {
				fmt.Fprintln(stdio.Err, grantNotice(p, g, kp.Public, nodes))
				if g.Wrote {
					mu.Lock()
					wrote = append(wrote, grantedWhere(g, p.Node.Name))
					mu.Unlock()
				}
			},
		}
	}
	rep, err = audit.Run(ctx, cfg, sel.Run)
	return rep, wrote, err
}

// auditShown is how many evidence lines the table prints per finding.
const auditShown = 6

// writeAuditTable prints a summary table, then each finding's details.
// Evidence and fixes quote metadata (user names) and API answers: all
// free text goes through printable.
func writeAuditTable(w io.Writer, rep *audit.Report) {
	if len(rep.Findings) == 0 {
		fmt.Fprintf(w, "no findings on %s\n", plural(len(rep.Nodes), "node"))
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tFINDING\tNODES\tTITLE")
	for _, f := range rep.Findings {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\n", f.Severity, f.ID, len(f.Nodes), len(rep.Nodes), printable(f.Title))
	}
	tw.Flush()
	for _, f := range rep.Findings {
		fmt.Fprintf(w, "\n%s %s: %s\n", f.Severity, f.ID, printable(f.Title))
		if len(f.Nodes) > 0 {
			fmt.Fprintf(w, "  nodes:    %s\n", printable(listSome(f.Nodes)))
		}
		for i, e := range f.Evidence {
			if i == auditShown {
				fmt.Fprintf(w, "            ... and %d more (--format json lists all)\n", len(f.Evidence)-auditShown)
				break
			}
			fmt.Fprintf(w, "  %s %s\n", label(i, "evidence:"), printable(e))
		}
		for i, fix := range f.Fix {
			if i == auditShown {
				fmt.Fprintf(w, "            ... and %d more (--format json lists all)\n", len(f.Fix)-auditShown)
				break
			}
			fmt.Fprintf(w, "  %s %s\n", label(i, "fix:"), printable(fix))
		}
	}
}

// label is name on a block's first line and padding after.
func label(i int, name string) string {
	if i == 0 {
		return fmt.Sprintf("%-9s", name)
	}
	return strings.Repeat(" ", 9)
}
