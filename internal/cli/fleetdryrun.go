package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/fleet"
	"github.com/gkessh/gkessh/knownhosts"
)

// openDryRun opens a dry run's access and selects its nodes; the caller
// closes a when err is nil.
func openDryRun(ctx context.Context, g globalOptions, k keyOptions, strict knownhosts.StrictMode, sel fleet.Selector, d *deps, stdio Stdio) (a *access.Access, s fleet.Selection, err error) {
	if a, err = newAccess(ctx, g, k, d, stdio, accessOptions{Strict: strict, DryRun: true, Quiet: true}); err != nil {
		return nil, s, err
	}
	c, err := a.Compute(ctx)
	if err == nil {
		s, err = fleet.Select(ctx, c, sel)
	}
	if err != nil {
		a.Close()
		return nil, s, err
	}
	return a, s, nil
}

// dryRunFleet says on out, for a fleet command's --dry-run, what it would
// do on the selected nodes, from the listing and the plans, and changes
// nothing: no key is made or written, no node connected to. It says each
// key write once (a project's serves the whole fleet), then what does says
// for each node, and the nodes it would leave out (verb: what it would not
// do there) with why.
func dryRunFleet(ctx context.Context, a *access.Access, sel fleet.Selection, k keyOptions, d *deps, out, warn io.Writer, verb string, does func(p *access.Plan) string) error {
	for _, err := range sel.Invalid {
		fmt.Fprintf(warn, "gkessh: skipping an instance: %v\n", err)
	}
	for _, r := range sel.Unreachable {
		fmt.Fprintf(out, "%s: would not %s: %s\n", r.Node, verb, printable(shortReason(r.Err)))
	}
	for _, in := range sel.Skipped {
		fmt.Fprintf(out, "%s: would not %s: %s, not RUNNING\n", in.Name, verb, printable(in.Status))
	}
	said := map[string]bool{}
	for _, inst := range sel.Run {
		p, err := a.PlanInstance(ctx, inst)
		if errors.Is(err, access.ErrOSLogin) {
			fmt.Fprintf(out, "%s: would not %s: OS Login is on\n", inst.Name, verb)
			continue
		}
		if err != nil {
			return err
		}
		var b strings.Builder
		if err := keyDryRun(&b, d, k, p); err != nil {
			return err
		}
		if !said[b.String()] {
			said[b.String()] = true
			fmt.Fprint(out, b.String())
		}
		fmt.Fprintf(out, "%s: %s\n", inst.Name, does(p))
	}
	return nil
}
