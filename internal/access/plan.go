package access

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/metakeys"
	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/knownhosts"
)

// Plan is how the user gets onto one node, as read before anything is
// written.
type Plan struct {
	Node Node
	Inst *gce.Instance
	Mode Mode
	// User is who logs in: Config.User where metadata keys apply, the
	// profile's POSIX user under OS Login ("" until the first import
	// gives the profile one; Grant then fills it in).
	User string
	// Account is, under OS Login, the account whose profile holds the key.
	Account string
	// Scope and Item say, where metadata keys apply, which metadata grants
	// the key (keys.ScopeProject or keys.ScopeInstance) and its item
	// (ssh-keys, or a legacy sshKeys the node still reads); Item is ""
	// while there is no key yet.
	Scope, Item string
	// WriteDue: the key is missing where the node reads keys, or will
	// not last long enough there; Grant writes. Why says which, in words.
	WriteDue bool
	Why      string
	// Line is the metadata line a write would add, "" when none is due
	// or there is no key yet.
	Line string
	// Present: the key is already granted there (an unexpired line for
	// the user, or a key in the profile); Expire is when that grant
	// expires, zero when it never does.
	Present bool
	Expire  time.Time

	hostKeys  lazy[HostKeys]
	published lazy[[]ssh.PublicKey]
}

// Plan reads how the user gets onto the node called name: the instance
// (refreshing the zone cache), the project, and under OS Login the
// profile. It writes nothing.
func (a *Access) Plan(ctx context.Context, name string) (*Plan, error) {
	n, inst, err := a.Instance(ctx, name)
	if err != nil {
		return nil, err
	}
	p, err := a.PlanInstance(ctx, inst)
	if err != nil {
		return nil, err
	}
	p.Node = n
	return p, nil
}

// PlanInstance is Plan for an instance already read (a fleet's listing).
// The project and the OS Login profile are read once per Access, so N
// plans cost N host-key reads at most, and those only when asked for.
func (a *Access) PlanInstance(ctx context.Context, inst *gce.Instance) (*Plan, error) {
	proj, err := a.Project(ctx)
	if err != nil {
		return nil, err
	}
	p := &Plan{Node: Node{Project: a.cfg.Project}, Inst: inst, Mode: ModeOf(inst, proj)}
	if inst != nil {
		p.Node = NodeOf(a.cfg.Project, inst)
	}
	pub := a.publicKey()
	if p.Mode == OSLogin && a.cfg.NoOSLogin {
		return nil, ErrOSLogin
	}
	if p.Mode == OSLogin {
		if err := a.planOSLogin(ctx, p, proj, pub); err != nil {
			return nil, err
		}
		return p, nil
	}
	p.User = a.cfg.User
	if pub == nil {
		// No key yet: whatever its line will be, it has to be written.
		p.WriteDue = true
		p.Scope, err = metakeys.Scope(a.cfg.Scope, inst)
		return p, err
	}
	res, err := metakeys.Due(proj, inst, pub, a.ensureOptions(proj, true))
	if err != nil {
		return nil, err
	}
	p.Scope, p.Item, p.WriteDue, p.Line = res.Scope, res.Item, res.Wrote, res.Line
	if p.Scope == keys.ScopeInstance && a.cfg.Scope == "" && inst != nil {
		a.cfg.Logf("instance %s ignores project-wide keys (block-project-ssh-keys or legacy sshKeys): using its own metadata", inst.Name)
	}
	p.Expire, p.Present = current(proj, inst, p, pub, a.cfg.Now())
	p.Why = a.why(p)
	return p, nil
}

// PlanProject is the plan for no node in particular: the project's
// metadata, or the OS Login profile when the project turns OS Login on.
// Its Inst is nil, and it has no host keys.
func (a *Access) PlanProject(ctx context.Context) (*Plan, error) {
	return a.PlanInstance(ctx, nil)
}

// planOSLogin fills in p for a node under OS Login from the account's
// profile.
func (a *Access) planOSLogin(ctx context.Context, p *Plan, proj *gce.Project, pub ssh.PublicKey) error {
	if extras := Extras(p.Inst, proj); len(extras) > 0 {
		if p.Inst == nil {
			return &ExtrasError{Extras: extras}
		}
		return fmt.Errorf("%s: %w", p.Node.Name, &ExtrasError{Extras: extras})
	}
	prof, err := a.loginProfile(ctx)
	if err != nil {
		return err
	}
	p.Account, p.User = prof.account, prof.UsernameFor(a.cfg.User)
	if p.User != "" {
		if err := CheckUser(p.User); err != nil {
			return &BadPosixUserError{Account: p.Account, User: p.User, Err: err}
		}
	}
	p.WriteDue = true
	if pub == nil || p.User == "" {
		return nil
	}
	if _, k, ok := prof.Find(pub); ok && (k.Expire().IsZero() || k.Expire().After(a.cfg.Now())) {
		p.Expire, p.Present = k.Expire(), true
		now := a.cfg.Now()
		p.WriteDue = !keys.Lasts(p.Expire, now, a.lifetime(now), a.cfg.ExactExpiry)
	}
	p.Why = a.why(p)
	return nil
}

// why says why a write is due for p, "" when none is.
func (a *Access) why(p *Plan) string {
	switch {
	case !p.WriteDue:
		return ""
	case !p.Present:
		return "the key is not there yet"
	case p.Expire.IsZero():
		return "it is there, but without the expiry asked for"
	case !p.Expire.After(a.cfg.Now().Add(keys.RefreshMargin(a.lifetime(a.cfg.Now())))):
		return "it is there, but expires " + p.Expire.UTC().Format(time.RFC3339) + ", within the refresh margin"
	}
	return "it is there, but expires " + p.Expire.UTC().Format(time.RFC3339) + ", not about when the lifetime asked for ends"
}

// current is when the line that grants pub to p.User where p's node reads
// keys expires (zero when it never does), and whether there is one that
// has not expired at now.
func current(proj *gce.Project, inst *gce.Instance, p *Plan, pub ssh.PublicKey, now time.Time) (time.Time, bool) {
	var md *gce.Metadata
	if p.Scope == keys.ScopeInstance {
		md = inst.Metadata
	} else if proj != nil {
		md = proj.CommonInstanceMetadata
	}
	v, _ := gce.MetadataValue(md, p.Item)
	var latest time.Time
	for _, l := range keys.ParseLines(v) {
		if !l.Valid() || l.User != p.User || !keys.SameKey(l.Key, pub) || l.Expired(now) {
			continue
		}
		if !l.Expiring() {
			return time.Time{}, true
		}
		if l.ExpireOn.After(latest) {
			latest = l.ExpireOn
		}
	}
	return latest, !latest.IsZero()
}

// publicKey is the user's public key: the loaded pair's, else the key
// file's public half; nil while there is none to read. A key file that
// cannot be read is reported by Key, with its own advice, when the key is
// needed; until then a write is due whatever the key is.
func (a *Access) publicKey() ssh.PublicKey {
	if kp, err := a.key.peek(); err == nil && kp != nil {
		return kp.Public
	}
	if a.cfg.KeyFile == "" {
		return nil
	}
	pub, err := keys.PublicKey(a.cfg.KeyFile)
	if err != nil {
		return nil
	}
	return pub
}

func (a *Access) ensureOptions(proj *gce.Project, dryRun bool) metakeys.EnsureOptions {
	return metakeys.EnsureOptions{
		User: a.cfg.User, Scope: a.cfg.Scope, ExpireAfter: a.cfg.ExpireAfter, ExpireAt: a.cfg.ExpireAt, ExactExpiry: a.cfg.ExactExpiry,
		DryRun: dryRun, Project: proj, Now: a.cfg.Now, Logf: a.cfg.Logf,
	}
}

// HostKeys are the host keys to trust for a node: those its guest
// published (over the authenticated Compute API) and those known_hosts
// records for it.
type HostKeys struct {
	Alias     string // the HostKeyAlias they are recorded under, compute.ID
	Published []ssh.PublicKey
	Recorded  knownhosts.Recorded
	// Unread says why the published keys could not be read; the recorded
	// ones, or trust on first use, still apply.
	Unread error
}

// HostKeys reads, once per plan, the host keys to trust for p's node. The
// published ones are read as gcloud reads them: unless host keys go
// unchecked (Config.Strict no), and only when guest attributes are on for
// the node (gce.GuestAttributesEnabled: the instance's setting, else the
// project's; neither set is off).
func (a *Access) HostKeys(ctx context.Context, p *Plan) (HostKeys, error) {
	return p.hostKeys.get(func() (HostKeys, error) {
		hk := HostKeys{Alias: knownhosts.HostAlias(p.Node.ID)}
		if a.cfg.Strict != knownhosts.StrictNo {
			proj, err := a.Project(ctx)
			if err != nil {
				return hk, err
			}
			if gce.GuestAttributesEnabled(p.Inst, proj) {
				c, err := a.Compute(ctx)
				if err != nil {
					return hk, err
				}
				hk.Published, hk.Unread = c.HostKeys(ctx, p.Node.Zone, p.Node.Name)
			}
		}
		var err error
		hk.Recorded, err = a.known.Lookup(hk.Alias)
		return hk, err
	})
}

// PublishedSource says where a node's published host keys come from, for
// messages.
func PublishedSource(n Node) string {
	return fmt.Sprintf("its guest attributes (hostkeys/ of %s)", n)
}
