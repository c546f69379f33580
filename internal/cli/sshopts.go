package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	ucli "github.com/urfave/cli/v2"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/fleet"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/knownhosts"
	"github.com/gkessh/gkessh/sshconfig"
)

// openSSHOptions are the settings shared by config-ssh and inventory: how
// OpenSSH reaches nodes through `gkessh proxy`.
type openSSHOptions struct {
	globalOptions
	keyOptions // User and KeyFile
	// Selector narrows the project's RUNNING instances (All is implied).
	Selector fleet.Selector
	Strict   string // StrictHostKeyChecking value
	// AcceptChanged lets published host keys replace changed recorded
	// ones (knownhosts.Pin).
	AcceptChanged bool
}

// openSSHFlags are the own flags of config-ssh and inventory.
func openSSHFlags() []ucli.Flag {
	return append(setFlags(), acceptChangedFlag())
}

func openSSHFlagValues(c *ucli.Context) (openSSHOptions, error) {
	k, err := keyFlagValues(c)
	if err != nil {
		return openSSHOptions{}, err
	}
	o := openSSHOptions{
		globalOptions: globals(c),
		keyOptions:    k,
		Selector:      selectorFlagValues(c),
		AcceptChanged: c.Bool("accept-changed-host-keys"),
	}
	o.Selector.Pattern = c.String("pattern")
	// What ssh checks, so yes by default, as ssh's own default.
	strict, err := strictFlagValue(c, knownhosts.StrictYes)
	if err != nil {
		return o, err
	}
	o.Strict = string(strict)
	if o.Selector.Pattern != "" {
		if err := gce.CheckNamePattern(o.Selector.Pattern); err != nil {
			return o, usagef("--pattern: %v: use instance name characters with * and ?", err)
		}
	}
	return o, checkFilter(o.Selector.Filter, true)
}

// proxyRoute is how OpenSSH reaches a node through `gkessh proxy`: the
// values config-ssh and inventory write for every node, with the defaults
// filled in from deps.
type proxyRoute struct {
	self       string // absolute path of this gkessh binary
	user       string
	keyFile    string
	defaultKey bool // keyFile is the default, so the proxy needs no --key-file
	knownHosts string
	strict     string
}

func proxyRouteOf(d *deps, o openSSHOptions) (proxyRoute, error) {
	p := proxyRoute{strict: o.Strict}
	var err error
	if p.user, err = userOf(d, o.keyOptions); err != nil {
		return p, err
	}
	if p.keyFile, err = keyFileOf(d, o.keyOptions); err != nil {
		return p, err
	}
	def, _ := d.keyPath()
	p.defaultKey = p.keyFile == def
	if p.knownHosts, err = d.knownHosts(); err != nil {
		return p, err
	}
	if p.self, err = d.executable(); err != nil {
		return p, fmt.Errorf("find the gkessh binary for ProxyCommand: %w", err)
	}
	return p, checkProxyBinary(p.self, d.env)
}

// checkProxyBinary refuses to name in a ProxyCommand a gkessh that another
// local user could later put a program in place of: one `go run` built in
// a go-build directory of the temporary directory (deleted when go run
// exits, and the temporary directory lets anyone create it again), or one
// in Go's build cache, which go clean empties.
func checkProxyBinary(self string, env func(string) (string, bool)) error {
	under := func(root, p string) (string, bool) {
		rel, err := filepath.Rel(root, p)
		return rel, root != "" && err == nil && filepath.IsAbs(root) && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
	}
	tmps := []string{os.TempDir()}
	if t, _ := env("GOTMPDIR"); t != "" {
		tmps = append(tmps, t)
	}
	caches := []string{}
	if c, _ := env("GOCACHE"); c != "" {
		caches = append(caches, c)
	} else if c, err := os.UserCacheDir(); err == nil {
		caches = append(caches, filepath.Join(c, "go-build"))
	}
	temporary := false
	for _, t := range tmps {
		if rel, ok := under(t, self); ok && strings.HasPrefix(rel, "go-build") {
			temporary = true
		}
	}
	for _, c := range caches {
		if _, ok := under(c, self); ok {
			temporary = true
		}
	}
	if temporary {
		return fmt.Errorf("this gkessh is a temporary build (%s, from go run or go test): a ProxyCommand naming it would run whatever is at that path once it is gone, "+
			"which another local user can create; build gkessh (make build, or go install ./cmd/gkessh) and run that binary", self)
	}
	return nil
}

// listNodes plans every RUNNING instance o.Selector picks (all of them
// when it is empty), sorted by name, which fills the zone cache so
// `gkessh proxy` makes no lookup and gives each its login user (the
// profile's POSIX user under OS Login, read once for all), and pins each
// node's published host keys in the known_hosts file (under compute.ID,
// or the node name when byName) so the first ssh is verified instead of
// trusted on first use. A selection that picks nothing is an error
// (*fleet.NoMatchError); with no selection, an empty project is not. A node whose guest now publishes other keys than
// the recorded ones is refused (the whole run fails, naming every such
// node) unless o.AcceptChanged. An instance whose name or zone is outside
// GCE's grammar is skipped with a line on warn: it would otherwise reach
// ssh's config and known_hosts, and a shell, as it is. A node under OS
// Login whose profile cannot be read keeps the user of the others, with a
// warning: their entries are still good.
func listNodes(ctx context.Context, o openSSHOptions, d *deps, stdio Stdio, warn io.Writer, byName bool) ([]*access.Plan, error) {
	a, err := newAccess(ctx, o.globalOptions, o.keyOptions, d, stdio, accessOptions{})
	if err != nil {
		return nil, err
	}
	c, err := a.Compute(ctx)
	if err != nil {
		return nil, err
	}
	sel := o.Selector
	sel.All = true
	found, err := fleet.Select(ctx, c, sel)
	var none *fleet.NoMatchError
	if errors.As(err, &none) && !selectorSet(o.Selector) && sel.Pattern == "" && sel.Zone == "" {
		err = nil
	}
	if err != nil {
		return nil, filterUsage(err, true)
	}
	for _, err := range found.Invalid {
		fmt.Fprintf(warn, "gkessh: skipping an instance: %v\n", err)
	}
	proj, err := a.Project(ctx)
	if err != nil {
		return nil, err
	}
	user, err := userOf(d, o.keyOptions)
	if err != nil {
		return nil, err
	}
	var plans []*access.Plan
	var keepUser []string
	var keepWhy error
	for _, inst := range found.Run {
		p, err := a.PlanInstance(ctx, inst)
		var bad *access.BadPosixUserError
		if errors.As(err, &bad) {
			// Never written into a config or an inventory as it is.
			fmt.Fprintf(warn, "gkessh: skipping %s: %s\n", inst.Name, printable(err.Error()))
			continue
		}
		if err != nil && access.ModeOf(inst, proj) == access.OSLogin {
			keepUser, keepWhy = append(keepUser, inst.Name), err
			p = &access.Plan{Node: access.NodeOf(c.ProjectID, inst), Inst: inst, Mode: access.OSLogin, User: user}
		} else if err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	nodes := make([]access.Node, len(plans))
	for i, p := range plans {
		nodes[i] = p.Node
	}
	a.Remember(nodes...)
	if len(keepUser) > 0 {
		fmt.Fprintf(warn, "gkessh: warning: %s under OS Login keep user %s: %v\n", listSome(keepUser), user, keepWhy)
	}
	if o.DryRun {
		return plans, nil
	}
	return pinAll(ctx, a, plans, o.AcceptChanged, byName, warn)
}

// pinAll reads every node's published host keys, up to defaultParallel
// calls at a time, and pins them all at once (knownhosts.PinAll: one
// rewrite of the file for every first contact). It returns the plans whose
// keys are pinned; a changed key leaves its node out, and the run fails
// naming every such node. A node whose published keys cannot be read is
// kept as one that published none, with one warning for all such nodes,
// as a login warns: its key is trusted on first contact. Notes and errors
// come in the plans' order.
func pinAll(ctx context.Context, a *access.Access, plans []*access.Plan, accept, byName bool, warn io.Writer) ([]*access.Plan, error) {
	hks := make([]access.HostKeys, len(plans))
	errs := make([]error, len(plans))
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	slots := make(chan struct{}, defaultParallel)
	var wg sync.WaitGroup
	for i, p := range plans {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			hks[i], errs[i] = a.HostKeys(ctx, p)
			if errs[i] != nil {
				cancel() // the run fails: stop reading the others
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		// The first failure, not those it cut short.
		if err != nil && (parent.Err() != nil || !errors.Is(err, context.Canceled)) {
			return nil, err
		}
	}
	if err := parent.Err(); err != nil {
		return nil, err // a read it cut short is no unread key
	}
	var unread []string
	var unreadWhy error
	for i, p := range plans {
		if hks[i].Unread != nil {
			unread = append(unread, p.Node.Name)
			if unreadWhy == nil {
				unreadWhy = hks[i].Unread
			}
		}
	}
	if len(unread) > 0 {
		fmt.Fprintf(warn, "gkessh: warning: %s: published host keys not read (%v); the first login trusts the key it is shown\n", listSome(unread), unreadWhy)
	}
	pins := make([]knownhosts.Pin, len(plans))
	for i, p := range plans {
		pins[i] = knownhosts.Pin{Node: p.Node.Name, Alias: hks[i].Alias, Source: access.PublishedSource(p.Node), Published: hks[i].Published}
		if byName {
			pins[i].Alias = p.Node.Name
		}
	}
	pinned, errs := a.KnownHosts().PinAll(ctx, pins, accept)
	var kept []*access.Plan
	var changed []error
	for i, p := range plans {
		var cerr *knownhosts.HostKeyChangedError
		switch {
		case errors.As(errs[i], &cerr):
			changed = append(changed, errs[i])
		case errs[i] != nil:
			return nil, errs[i]
		default:
			access.ReportReplaced(warn, p.Node, pins[i].Alias, pinned[i].Replaced, pins[i].Published)
			kept = append(kept, p)
		}
	}
	if len(changed) > 0 {
		return nil, errors.Join(changed...)
	}
	return kept, nil
}

// sshOptions are the ssh_config options that reach r through gkessh as
// user, in the order config-ssh writes them. The project and zone ride on
// the ProxyCommand so the proxy needs no lookup at all. For a wildcard
// entry r has only Project set: no HostName, no HostKeyAlias, and the
// proxy finds the zone (cached by listNodes).
func (p proxyRoute) sshOptions(r access.Node, user string) [][2]string {
	// %r hands the proxy ssh's user, so the key it stages is that user's.
	proxy := fmt.Sprintf("%s proxy --user %%r --project %s", sshconfig.CommandArg(p.self), sshconfig.CommandArg(r.Project))
	if r.ID != 0 {
		proxy += " --instance-id " + strconv.FormatUint(r.ID, 10)
	}
	if r.Zone != "" {
		proxy += " --zone " + sshconfig.CommandArg(r.Zone)
	}
	if !p.defaultKey {
		proxy += " --key-file " + sshconfig.CommandArg(p.keyFile)
	}
	var opts [][2]string
	if r.Name != "" {
		opts = append(opts, [2]string{"HostName", r.Name})
	}
	opts = append(opts,
		[2]string{"User", user},
		[2]string{"IdentityFile", sshconfig.Path(p.keyFile)},
		[2]string{"IdentitiesOnly", "yes"},
	)
	if r.ID != 0 {
		opts = append(opts, [2]string{"HostKeyAlias", knownhosts.HostAlias(r.ID)})
	}
	return append(opts,
		[2]string{"UserKnownHostsFile", sshconfig.Path(p.knownHosts)},
		[2]string{"StrictHostKeyChecking", p.strict},
		[2]string{"CheckHostIP", "no"},
		// A relay or path that dies silently is noticed by ssh within
		// about 90 s (3 unanswered probes) instead of never.
		[2]string{"ServerAliveInterval", "30"},
		[2]string{"ProxyCommand", proxy + " %h %p"},
		[2]string{"ProxyUseFdpass", "no"},
	)
}
