package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"

	ucli "github.com/urfave/cli/v2"

	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/knownhosts"
	"github.com/gkessh/gkessh/sshconfig"
)

// openSSHOptions are the settings shared by config-ssh and inventory: how
// OpenSSH reaches nodes through `gkessh proxy`.
type openSSHOptions struct {
	globalOptions
	keyOptions        // User and KeyFile
	Filter     string // regexp on instance names; "" for all
	Strict     string // StrictHostKeyChecking value
	// AcceptChanged lets published host keys replace changed recorded
	// ones (knownhosts.Pin).
	AcceptChanged bool
}

func openSSHFlags() []ucli.Flag {
	return append(googleFlags(),
		&ucli.StringFlag{Name: "filter", Usage: "only instances whose name matches this regexp (e.g. ^gke-cluster-)"},
		userFlag, keyFileFlag,
		&ucli.StringFlag{Name: "strict-host-key-checking", Value: "yes", Usage: "ssh's StrictHostKeyChecking: yes, accept-new or no"},
		acceptChangedFlag,
	)
}

func openSSHFlagValues(c *ucli.Context) (openSSHOptions, error) {
	k, err := keyFlagValues(c)
	if err != nil {
		return openSSHOptions{}, err
	}
	o := openSSHOptions{
		globalOptions: globals(c),
		keyOptions:    k,
		Filter:        c.String("filter"),
		Strict:        c.String("strict-host-key-checking"),
		AcceptChanged: c.Bool("accept-changed-host-keys"),
	}
	if _, err := strictFlagValue(c); err != nil {
		return o, err
	}
	if _, err := regexp.Compile(o.Filter); err != nil {
		return o, usagef("--filter: %v", err)
	}
	return o, nil
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
	// posix is, for the nodes under OS Login, the user to log in as: the
	// profile's POSIX user (setOSLoginUsers).
	posix map[string]string
}

func (d *deps) proxyRoute(o openSSHOptions) (proxyRoute, error) {
	p := proxyRoute{strict: o.Strict}
	var err error
	if p.user, err = d.user(o.keyOptions); err != nil {
		return p, err
	}
	if p.keyFile, err = d.keyFile(o.keyOptions); err != nil {
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
	return p, nil
}

// listNodes lists the RUNNING instances matching o.Filter (and in --zone,
// when given), sorted by name,
// fills the zone cache so `gkessh proxy` makes no lookup, and pins each
// node's published host keys in the known_hosts file (under compute.ID, or
// the node name when byName) so the first ssh is verified instead of
// trusted on first use. A node whose guest now publishes other keys than
// the recorded ones is refused (the whole run fails, naming every such
// node) unless o.AcceptChanged. An instance whose name or zone is outside GCE's
// grammar is skipped with a line on warn: it would otherwise reach ssh's
// config and known_hosts, and a shell, as it is.
func listNodes(ctx context.Context, o openSSHOptions, d *deps, known string, warn io.Writer, byName bool) ([]resolved, []*gce.Instance, error) {
	c, err := d.compute(ctx, o.globalOptions)
	if err != nil {
		return nil, nil, err
	}
	all, err := c.List(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	re := regexp.MustCompile(o.Filter)
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	cache, cacheErr := d.zoneCache()
	var rs []resolved
	var insts []*gce.Instance
	var changed []error
	for _, inst := range all {
		if inst.Status != "RUNNING" || !re.MatchString(inst.Name) || (o.Zone != "" && gce.ZoneName(inst.Zone) != o.Zone) {
			continue
		}
		r := resolved{Project: c.ProjectID, Zone: gce.ZoneName(inst.Zone), Name: inst.Name, ID: inst.Id}
		if err := cmp.Or(gce.CheckName(r.Name), gce.CheckZone(r.Zone)); err != nil {
			fmt.Fprintf(warn, "gkessh: skipping an instance: %v\n", err)
			continue
		}
		if cacheErr == nil {
			cache.Put(r.Project, r.Name, r.Zone, r.ID) // best effort: a miss costs one lookup
		}
		if !d.dryRun {
			hostKeys, err := c.HostKeys(ctx, r.Zone, r.Name)
			if err != nil {
				return nil, nil, err
			}
			alias := knownhosts.HostAlias(r.ID)
			if byName {
				alias = r.Name
			}
			pinned, err := knownhosts.KnownHosts{Path: known}.Pin(r.Name, alias, publishedSource(r), hostKeys, o.AcceptChanged)
			var cerr *knownhosts.HostKeyChangedError
			if errors.As(err, &cerr) {
				changed = append(changed, err)
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			reportReplaced(warn, r, alias, pinned.Replaced, hostKeys)
		}
		rs = append(rs, r)
		insts = append(insts, inst)
	}
	if len(changed) > 0 {
		return nil, nil, errors.Join(changed...)
	}
	return rs, insts, nil
}

// setOSLoginUsers finds which nodes are under OS Login and gives them the
// POSIX user of the gcloud account's profile, read once for all of them.
// When it cannot be read they keep p.user, with a warning: the other
// nodes' entries are still good.
func (p *proxyRoute) setOSLoginUsers(ctx context.Context, o openSSHOptions, d *deps, nodes []resolved, insts []*gce.Instance, warn io.Writer) error {
	c, err := d.compute(ctx, o.globalOptions)
	if err != nil {
		return err
	}
	proj, err := c.Project(ctx)
	if err != nil {
		return err
	}
	var names []string
	for i, inst := range insts {
		if gce.OSLoginEnabled(inst, proj) {
			names = append(names, nodes[i].Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	posix, err := d.osLoginUser(ctx, c)
	if err != nil {
		fmt.Fprintf(warn, "gkessh: warning: %s under OS Login keep user %s: %v\n", listSome(names), p.user, err)
		return nil
	}
	p.posix = map[string]string{}
	for _, n := range names {
		p.posix[n] = posix
	}
	return nil
}

// sshOptions are the ssh_config options that reach r through gkessh, in the
// order config-ssh writes them. The project and zone ride on the
// ProxyCommand so the proxy needs no lookup at all. For a wildcard entry r
// has only Project set: no HostName, no HostKeyAlias, and the proxy finds
// the zone (cached by listNodes).
func (p proxyRoute) sshOptions(r resolved) [][2]string {
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
		[2]string{"User", cmp.Or(p.posix[r.Name], p.user)},
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
