package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/knownhosts"
)

// accessOptions are what a command adds to the global and key flags to
// get onto nodes: its host key policy, its dry run, and where the wait
// for a key shows.
type accessOptions struct {
	Strict        knownhosts.StrictMode
	AcceptChanged bool
	DryRun        bool
	// Quiet keeps host key notes off stderr (a fleet prints per node).
	Quiet bool
	// NoOSLogin leaves nodes under OS Login out (access.ErrOSLogin).
	NoOSLogin bool
	// Logf, when set, hears what is done even without --verbose.
	Logf func(format string, args ...any)
	// Progress shows the propagation wait on stderr.
	Progress bool
}

// newAccess builds the one Access a command goes through to reach nodes,
// from the flags and deps.
func newAccess(ctx context.Context, g globalOptions, k keyOptions, d *deps, stdio Stdio, o accessOptions) (*access.Access, error) {
	cfg, err := nodeConfig(g, d)
	if err != nil {
		return nil, err
	}
	// The credentials first: a token file that cannot be read is reported
	// before a key is generated or anything else fails for want of a token.
	if _, err := d.tokenSource(ctx, g); err != nil {
		return nil, err
	}
	user, err := userOf(d, k)
	if err != nil {
		return nil, err
	}
	keyFile, err := keyFileOf(d, k)
	if err != nil {
		return nil, err
	}
	known, err := d.knownHosts()
	if err != nil {
		return nil, err
	}
	cfg.User, cfg.KeyFile = user, keyFile
	cfg.Key = func() (*keys.KeyPair, error) { return loadKey(keyFile, stdio.Err, k.ForceOverwrite) }
	cfg.Scope, cfg.ExpireAfter, cfg.ExpireAt, cfg.ExactExpiry = k.Scope, k.ExpireAfter, k.ExpireAt, k.ExpirySet
	cfg.Account = osLoginAccount(d, g)
	cfg.KnownHosts, cfg.Strict, cfg.AcceptChanged = known, o.Strict, o.AcceptChanged
	cfg.Warn = stdio.Err
	cfg.NoOSLogin = o.NoOSLogin
	if g.Verbose {
		cfg.Logf = d.logger(true)
	}
	if o.Logf != nil {
		cfg.Logf = o.Logf
	}
	if o.Quiet {
		cfg.Warn = nil
	}
	if o.Progress {
		cfg.Progress, cfg.Live = stdio.Err, isTerminal(stdio.Err)
	}
	return access.New(cfg), nil
}

// newResolver is the Access of a command that only finds nodes: a tunnel,
// the proxy's dial.
func newResolver(g globalOptions, d *deps) (*access.Access, error) {
	cfg, err := nodeConfig(g, d)
	if err != nil {
		return nil, err
	}
	return access.New(cfg), nil
}

// nodeConfig is the part of an Access's configuration that finds nodes.
func nodeConfig(g globalOptions, d *deps) (access.Config, error) {
	project, err := projectOf(d, g)
	if err != nil {
		return access.Config{}, err
	}
	cfg := access.Config{
		Project: project, Zone: g.Zone,
		Compute: func(ctx context.Context) (*gce.Client, error) { return d.compute(ctx, g) },
		DryRun:  g.DryRun, Now: d.now,
		Suggest: true, // but not for the proxy (nodeDialer)
	}
	if zones, err := d.zoneCache(g); err == nil {
		cfg.Zones = zones
	}
	if g.Zone == "" {
		// As gcloud: compute/zone (CLOUDSDK_COMPUTE_ZONE) when no --zone.
		if cfg.DefaultZone, err = d.gcloud("compute", "zone"); err != nil {
			return access.Config{}, err
		}
		if cfg.DefaultZone != "" {
			if err := gce.CheckZone(cfg.DefaultZone); err != nil {
				return access.Config{}, fmt.Errorf("gcloud's compute/zone: %w", err)
			}
		}
	}
	return cfg, nil
}

// checkNode refuses a node name or --zone outside GCE's grammar: they go
// into API paths, the zone cache and messages.
func checkNode(node, zone string) error {
	if node == "" {
		return usagef("no node given")
	}
	if err := gce.CheckName(node); err != nil {
		return usagef("%v", err)
	}
	if zone != "" {
		if err := gce.CheckZone(zone); err != nil {
			return usagef("--zone: %v", err)
		}
	}
	return nil
}

// granted says what Grant did, in a sentence for stderr, and "" when it
// wrote nothing.
func granted(g *access.Granted, p *access.Plan) string {
	if !g.Wrote {
		return ""
	}
	if g.Mode == access.OSLogin {
		verb := "Imported your key into"
		if !g.Imported {
			verb = "Renewed your key in"
		}
		return fmt.Sprintf("%s the OS Login profile of %s (user %s), %s%s.", verb, g.Account, printable(g.User), whenExpires(g.Expire), replacedKey(p))
	}
	return fmt.Sprintf("Added %s's key to %s%s%s.", p.User, grantedWhere(g, p.Node.Name), expiryNote(keys.ParseLine(g.Line)), replaced(p))
}

// replacedIf is replaced(p) when wrote.
func replacedIf(wrote bool, p *access.Plan) string {
	if !wrote {
		return ""
	}
	return replaced(p)
}

// replacedKey is replaced for a key in an OS Login profile.
func replacedKey(p *access.Plan) string {
	if !p.Present {
		return ""
	}
	return " (it was " + whenExpires(p.Expire) + ")"
}

// replaced says which grant a write renewed: one of another lifetime,
// or one about to expire.
func replaced(p *access.Plan) string {
	if !p.Present {
		return ""
	}
	return " (in place of its line " + whenExpires(p.Expire) + ")"
}

// grantNotice says which grant a run relied on, written now or reused:
// the user, the key, where, until when, and on how many of its nodes it
// lets the user in (with sudo, for a metadata key: the guest puts its user
// in google-sudoers).
func grantNotice(p *access.Plan, g *access.Granted, pub ssh.PublicKey, nodes int) string {
	fp := ssh.FingerprintSHA256(pub)
	noun := "nodes"
	if nodes == 1 {
		noun = "node"
	}
	if g.Mode == access.OSLogin {
		if g.Wrote {
			return granted(g, p)
		}
		return fmt.Sprintf("Using your key %s already in the OS Login profile of %s (user %s), %s, on %d %s.", fp, g.Account, printable(g.User), whenExpires(g.Expire), nodes, noun)
	}
	verb := "Using " + p.User + "'s key " + fp + " already in "
	expire := g.Expire
	if g.Wrote {
		verb = "Added " + p.User + "'s key " + fp + " to "
	}
	return fmt.Sprintf("%s%s, %s%s: it grants sudo on %d %s.", verb, grantedWhere(g, p.Node.Name), whenExpires(expire), replacedIf(g.Wrote, p), nodes, noun)
}

// grantPlace is where g is: metadata, or the OS Login profile.
func grantPlace(g *access.Granted, p *access.Plan) string {
	if g.Mode == access.OSLogin {
		return "the OS Login profile of " + p.Account
	}
	return grantedWhere(g, p.Node.Name)
}

// grantedWhere is where a metadata grant is, for messages.
func grantedWhere(g *access.Granted, node string) string {
	where := describeScope(g.Scope, g.Item, node)
	if g.ProjectRefused {
		where += fmt.Sprintf(" (project metadata refused: no %s; gcloud falls back the same way)", gce.PermSetProjectMetadata)
	}
	return where
}

// whenExpires says when a key expires: "never expiring" or "expiring T".
func whenExpires(t time.Time) string {
	if t.IsZero() {
		return "never expiring"
	}
	return "expiring " + t.UTC().Format(time.RFC3339)
}

// gcloudAccount is gcloud's core/account.
func gcloudAccount(d *deps) (string, error) { return d.gcloud("core", "account") }

// osLoginAccount returns the account whose OS Login profile holds the key,
// as gcloud picks it (ussh.py): the service account impersonated
// (--impersonate-service-account, else auth/impersonate_service_account;
// the last of a delegation chain), else core/account.
func osLoginAccount(d *deps, g globalOptions) func() (string, error) {
	return func() (string, error) {
		chain := g.Impersonate
		if chain == "" {
			var err error
			if chain, err = d.gcloud("auth", "impersonate_service_account"); err != nil {
				return "", err
			}
		}
		if chain != "" {
			accounts := strings.Split(chain, ",")
			return strings.TrimSpace(accounts[len(accounts)-1]), nil
		}
		account, err := gcloudAccount(d)
		if err != nil {
			return "", err
		}
		if account == "" {
			return "", errNoOSLoginAccount
		}
		return account, nil
	}
}

// noAccountFix is what to do when OS Login is on and gcloud names no
// account: the key goes into an account's OS Login profile.
const noAccountFix = "set one with 'gcloud config set account EMAIL' (or CLOUDSDK_CORE_ACCOUNT)"

// errNoOSLoginAccount says so without naming where OS Login is turned on
// (the project or the instance) or an instance (keys ensure names none).
var errNoOSLoginAccount = errors.New("OS Login is on, so the key goes into a Google account's OS Login profile, and gcloud names no account: " + noAccountFix)
