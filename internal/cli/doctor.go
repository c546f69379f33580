package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/tunnel"
)

func doctorCommand(d *deps, stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:      "doctor",
		Usage:     "check everything a login needs, and say what to fix",
		ArgsUsage: "[NODE]",
		Description: "Checks the project, credentials, key files and Compute API access; with NODE also\n" +
			"the instance, OS Login, where its keys come from, the IAM permissions a login needs\n" +
			"(testIamPermissions), the firewall rules IAP meets (getEffectiveFirewalls), the serial\n" +
			"console, its published host keys and an IAP tunnel to its SSH port, as gcloud compute ssh\n" +
			"--troubleshoot does. Exits 1 when a check fails.",
		Flags: []ucli.Flag{
			&ucli.IntFlag{Name: "port", Value: 22, Usage: "port to open a tunnel to"},
		},
		Action: action(d, stdio, doctorFlagValues, runDoctor),
	}
}

func doctorFlagValues(c *ucli.Context) (doctorOptions, error) {
	if c.NArg() > 1 {
		return doctorOptions{}, usagef("doctor takes at most one NODE")
	}
	k, err := keyFlagValues(c)
	return doctorOptions{globalOptions: globals(c), keyOptions: k, Node: c.Args().First(), Port: c.Int("port")}, err
}

// doctorOptions are the flags and argument of doctor.
type doctorOptions struct {
	globalOptions
	keyOptions        // User and KeyFile
	Node       string // "" checks the project alone
	Port       int
}

// runDoctor prints one line per check; a failed check exits 1.
func runDoctor(ctx context.Context, o doctorOptions, d *deps, stdio Stdio) error {
	dr := doctor{doctorOptions: o, deps: d, out: stdio.Out}
	if dr.run(ctx) {
		return nil
	}
	return exitError{code: exitOther}
}

// doctor runs the checks in order, each building on the ones before.
type doctor struct {
	doctorOptions
	deps   *deps
	out    io.Writer
	failed bool
}

func (d *doctor) ok(format string, args ...any)   { fmt.Fprintf(d.out, "ok    "+format+"\n", args...) }
func (d *doctor) warn(format string, args ...any) { fmt.Fprintf(d.out, "warn  "+format+"\n", args...) }
func (d *doctor) fail(format string, args ...any) {
	d.failed = true
	fmt.Fprintf(d.out, "FAIL  "+format+"\n", args...)
}

// run prints one line per check and reports whether all passed.
func (d *doctor) run(ctx context.Context) bool {
	project, err := projectOf(d.deps, d.globalOptions)
	if err != nil {
		d.fail("project: %s", withHint(err))
		return false
	}
	d.ok("project %s%s", project, from(d.projectOrigin()))
	if !d.checkNetwork(ctx) {
		return false
	}
	ts, err := d.deps.tokenSource(ctx, d.globalOptions)
	if err == nil {
		_, err = ts.TokenContext(ctx)
	}
	if err != nil {
		d.fail("credentials: %s", withHint(err))
		return false
	}
	d.ok("credentials of %s, from %s; %s", ts.Principal, ts.Kind, tokenExpiry(ts.Expiry()))
	pub := d.checkKey()
	c, err := d.deps.compute(ctx, d.globalOptions)
	if err != nil {
		d.fail("compute API: %s", withHint(err))
		return false
	}
	proj, err := c.Project(ctx)
	if err != nil {
		d.fail("compute API: %s", withHint(err))
		return false
	}
	d.ok("compute API: project %s readable", proj.Name)
	if access.ModeOf(nil, proj) == access.OSLogin {
		d.warn("OS Login is on for the project: metadata keys are ignored except where an instance turns it off (GKE nodes do: they set enable-oslogin=false)")
	}
	if d.Node != "" {
		d.checkNode(ctx, c, proj, pub)
	}
	return !d.failed
}

// checkKey looks at the key files without creating them.
// checkOSLogin says how a login gets onto a node under OS Login, from
// its plan: with the key in the account's OS Login profile, as its POSIX
// user.
func (d *doctor) checkOSLogin(n access.Node, p *access.Plan, planErr error) {
	var extras *access.ExtrasError
	switch {
	case errors.As(planErr, &extras):
		d.fail("OS Login is on for %s: %s", n.Name, withHint(extras))
	case errors.Is(planErr, errNoOSLoginAccount):
		d.fail("OS Login is on for %s, so your key goes into a Google account's OS Login profile, and gcloud names no account: %s", n.Name, noAccountFix)
	case planErr != nil:
		d.fail("OS Login is on for %s, so your key goes into your OS Login profile: %s", n.Name, withHint(planErr))
	default:
		d.ok("OS Login is on for %s: your key goes into your OS Login profile, and you log in as %s", n.Name, printable(p.User))
	}
}

// checkOSLoginRoles says which OS Login role the caller holds on the
// instance: osAdminLogin logs in with sudo, osLogin without.
func (d *doctor) checkOSLoginRoles(ctx context.Context, c *gce.Client, r access.Node) {
	const login, admin = "compute.instances.osLogin", "compute.instances.osAdminLogin"
	held, err := c.TestPermissions(ctx, gce.OnInstance, r.Zone, r.Name, []string{login, admin})
	switch {
	case err != nil:
		d.warn("OS Login roles on %s: %v", r.Name, err)
	case slices.Contains(held, admin):
		d.ok("OS Login on %s: you hold %s (roles/compute.osAdminLogin): login with sudo", r.Name, admin)
	case slices.Contains(held, login):
		d.ok("OS Login on %s: you hold %s (roles/compute.osLogin): login without sudo; roles/compute.osAdminLogin adds sudo", r.Name, login)
	default:
		d.fail("OS Login on %s: you hold neither %s nor %s: grant roles/compute.osLogin (or roles/compute.osAdminLogin for sudo)", r.Name, login, admin)
	}
}

func (d *doctor) checkKey() ssh.PublicKey {
	path := d.KeyFile
	if path == "" {
		var err error
		if path, err = d.deps.keyPath(); err != nil {
			d.fail("key: %s", withHint(err))
			return nil
		}
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		d.ok("key: %s does not exist yet; gkessh creates it on first login", path)
		return nil
	}
	kp, err := keys.Load(path)
	if err != nil {
		d.fail("key: %s", withHint(err))
		return nil
	}
	defer kp.Close()
	d.ok("key %s (%s %s)", path, kp.Public.Type(), ssh.FingerprintSHA256(kp.Public))
	return kp.Public
}

func (d *doctor) checkNode(ctx context.Context, c *gce.Client, proj *gce.Project, pub ssh.PublicKey) {
	a, err := newAccess(ctx, d.globalOptions, d.keyOptions, d.deps, Stdio{Err: io.Discard}, accessOptions{})
	if err != nil {
		d.fail("%s", withHint(err))
		return
	}
	n, inst, err := a.Instance(ctx, d.Node)
	if err != nil {
		d.fail("instance: %s", withHint(err))
		return
	}
	if inst.Status != "RUNNING" {
		d.fail("%v", notRunning(n, inst.Status))
		return
	}
	d.ok("instance %s is RUNNING (id %d)", n, n.ID)
	p, planErr := a.PlanInstance(ctx, inst)
	mode := access.ModeOf(inst, proj)
	if p == nil {
		p = &access.Plan{Node: n, Inst: inst, Mode: mode}
	}
	p.Node = n
	if mode == access.OSLogin {
		// Where metadata keys come from, and whether yours is there,
		// would only contradict this: the guest reads none of them.
		d.checkOSLogin(n, p, planErr)
		d.checkOSLoginRoles(ctx, c, n)
	} else {
		d.checkMetadataKeys(p, planErr, pub)
	}
	d.checkIAM(ctx, c, n, inst, mode, p.Scope)
	d.checkFirewall(ctx, c, n, inst)
	d.checkSerial(ctx, c, n)
	switch hk, err := a.HostKeys(ctx, p); {
	case err == nil && hk.Unread != nil:
		d.warn("host keys: %v", hk.Unread)
	case err != nil:
		d.warn("host keys: %v", err)
	case len(hk.Published) == 0:
		d.warn("host keys: %s published none (enable-guest-attributes off?); the first login trusts the key it is shown", n.Name)
	default:
		d.ok("host keys: %s published %d", n.Name, len(hk.Published))
	}
	d.checkTunnel(ctx, n)
}

// checkMetadataKeys says where the node reads metadata keys and whether
// yours is there, from its plan.
func (d *doctor) checkMetadataKeys(p *access.Plan, planErr error, pub ssh.PublicKey) {
	name := p.Node.Name
	switch _, legacy := gce.MetadataValue(p.Inst.Metadata, keys.LegacyMetadataKey); {
	case legacy:
		d.warn("keys on %s come from instance metadata only: it has a legacy sshKeys item, so its guest ignores project keys; "+
			"move those lines to ssh-keys and remove sshKeys (gcloud compute instances remove-metadata %s --zone=%s --keys=sshKeys)", name, name, p.Node.Zone)
	case gce.BlocksProjectSSHKeys(p.Inst):
		d.ok("keys on %s come only from its own metadata: it sets block-project-ssh-keys", name)
	default:
		d.ok("keys on %s come from project and instance metadata", name)
	}
	switch {
	case planErr != nil:
		d.fail("key: %s", withHint(planErr))
	case pub == nil:
	case !p.WriteDue:
		d.ok("key is in %s metadata for user %s", p.Scope, printable(p.User))
	default:
		d.warn("key is not in the metadata %s reads for user %s, or expires within the hour; 'gkessh keys ensure %s' or the first login adds it", name, printable(p.User), name)
	}
}

// checkTunnel opens an IAP tunnel to the node's port and reads the SSH
// server's banner.
func (d *doctor) checkTunnel(ctx context.Context, r access.Node) {
	dialer, err := d.deps.iapDialer(ctx, d.globalOptions)
	if err != nil {
		d.fail("IAP tunnel: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := dialer.DialContext(ctx, tunnel.Target{Project: r.Project, Zone: r.Zone, Instance: r.Name, Port: d.Port})
	if err != nil {
		d.fail("IAP tunnel to %s:%d: %v", r.Name, d.Port, err)
		return
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	banner, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && banner == "" {
		d.fail("IAP tunnel to %s:%d opened, but nothing answered: %v", r.Name, d.Port, err)
		return
	}
	// The banner is the node's to choose: escaped like everything else
	// from outside.
	d.ok("IAP tunnel to %s:%d: %s", r.Name, d.Port, printable(strings.TrimSpace(banner)))
}

// tokenExpiry says when the token expires, never what it is.
func tokenExpiry(t time.Time) string {
	if t.IsZero() {
		return "its expiry is unknown (a bare token is used until refused)"
	}
	return fmt.Sprintf("token expires in %s (%s)", time.Until(t).Round(time.Second), t.UTC().Format("15:04:05 UTC"))
}

// projectOrigin says where the project came from: the flag or variable,
// else gcloud's core/project and where that is set. A wrong default
// project reads as "permission denied" further down; this line shows it.
func (d *doctor) projectOrigin() string {
	if d.Project != "" {
		return d.ProjectOrigin
	}
	cfg, err := d.deps.gcloudConfig()
	if err != nil {
		return ""
	}
	if s := cfg.Source("core", "project"); s != "" {
		return "core/project (" + s + ")"
	}
	return ""
}
