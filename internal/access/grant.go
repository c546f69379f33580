package access

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/metakeys"
	"github.com/gkessh/gkessh/keys"
)

// Granted is what Grant did, or with Config.DryRun would do.
type Granted struct {
	Mode Mode
	// Wrote: a metadata line was written, or the key imported into (or
	// its expiry updated in) the OS Login profile.
	Wrote bool
	// Shared: the write serves every plan of the Access (project metadata,
	// the OS Login profile), made once by whichever plan came first.
	Shared bool

	// Where metadata keys apply: the scope and item that grant the key,
	// and the line written ("" when none was).
	Scope, Item, Line string
	// ProjectRefused: the project write was refused (403), so the line
	// went to the instance's own metadata, which its guest reads too, as
	// gcloud falls back.
	ProjectRefused bool

	// Under OS Login: the profile's account and POSIX user, whether the
	// key was imported (else only its expiry was updated), and when it
	// expires (zero: never).
	Account, User string
	Imported      bool
	Expire        time.Time
}

// Grant makes the one write p needs, if any: the metadata line or the OS
// Login import. Writes that serve every plan (project metadata, the OS
// Login profile) are made once per Access, so N plans of a fleet cost one;
// when such a write fails, the Granted returned with the error says Shared.
// Under OS Login it fills in p.User when the profile had no POSIX account
// before the import.
func (a *Access) Grant(ctx context.Context, p *Plan) (*Granted, error) {
	shared := p.Mode == OSLogin || p.Scope == keys.ScopeProject
	if !p.WriteDue {
		return &Granted{Mode: p.Mode, Shared: shared, Scope: p.Scope, Item: p.Item, Account: p.Account, User: p.User, Expire: p.Expire}, nil
	}
	if a.cfg.DryRun {
		g := &Granted{Mode: p.Mode, Wrote: true, Shared: shared, Scope: p.Scope, Item: p.Item, Line: p.Line, Account: p.Account, User: p.User}
		g.Imported = p.Mode == OSLogin
		g.Expire = a.expiry()
		return g, nil
	}
	if p.Mode == OSLogin {
		g, err := a.shared("oslogin", func() (*Granted, error) { return a.importKey(ctx, p) })
		if err != nil {
			return &Granted{Mode: OSLogin, Shared: true}, err
		}
		if p.User == "" {
			p.User = g.User
		}
		return g, nil
	}
	if p.Scope == keys.ScopeProject {
		g, err := a.shared("project", func() (*Granted, error) { return a.ensure(ctx, p, true) })
		var denied *metakeys.ProjectWriteDeniedError
		if err == nil {
			return g, nil
		}
		if !errors.As(err, &denied) || a.cfg.Scope != "" {
			return &Granted{Mode: MetadataKeys, Shared: true}, err
		}
		// As gcloud does: a refused project write falls back to the
		// instance's own ssh-keys, which its guest reads too.
		g, err = a.ensure(ctx, p, false)
		if g != nil {
			g.ProjectRefused = true
		}
		return g, err
	}
	return a.ensure(ctx, p, false)
}

// ensure writes the key line for p: to project metadata when project,
// else to p's instance's own.
func (a *Access) ensure(ctx context.Context, p *Plan, project bool) (*Granted, error) {
	kp, c, err := a.writer(ctx)
	if err != nil {
		return nil, err
	}
	proj, err := a.Project(ctx)
	if err != nil {
		return nil, err
	}
	opts := a.ensureOptions(proj, false)
	opts.Comment = kp.Comment // a permanent line keeps it, as gcloud's does
	inst := p.Inst
	if project {
		inst = nil
		opts.Scope = keys.ScopeProject
	} else {
		opts.Scope = keys.ScopeInstance
	}
	res, err := metakeys.Ensure(ctx, c, inst, kp.Public, opts)
	if err != nil {
		return nil, err
	}
	g := &Granted{Mode: MetadataKeys, Wrote: res.Wrote, Shared: project, Scope: res.Scope, Item: res.Item, Line: res.Line}
	if l := keys.ParseLine(res.Line); l.Valid() && l.Expiring() {
		g.Expire = l.ExpireOn
	}
	return g, nil
}

// importKey puts the key into the OS Login profile, as gcloud does: an
// import when the profile lacks it (or has no POSIX account yet), else an
// update of its expiry.
func (a *Access) importKey(ctx context.Context, p *Plan) (*Granted, error) {
	kp, c, err := a.writer(ctx)
	if err != nil {
		return nil, err
	}
	prof, err := a.loginProfile(ctx)
	if err != nil {
		return nil, err
	}
	g := &Granted{Mode: OSLogin, Wrote: true, Shared: true, Account: prof.account, User: prof.UsernameFor(a.cfg.User), Expire: a.expiry()}
	if fp, held, ok := prof.Find(kp.Public); ok && g.User != "" {
		return g, c.SetOSLoginKeyExpiry(ctx, prof.account, fp, held, g.Expire)
	}
	got, err := c.ImportSSHKey(ctx, prof.account, kp.Public, kp.Comment, g.Expire, region(p.Node.Zone))
	if err != nil {
		return nil, err
	}
	g.User, g.Imported = got.UsernameFor(a.cfg.User), true
	if err := CheckUser(g.User); err != nil {
		return nil, &BadPosixUserError{Account: prof.account, User: g.User, Err: err}
	}
	return g, nil
}

// writer is what a write needs: the key pair and the client.
func (a *Access) writer(ctx context.Context) (*keys.KeyPair, *gce.Client, error) {
	kp, err := a.Key()
	if err != nil {
		return nil, nil, err
	}
	c, err := a.Compute(ctx)
	return kp, c, err
}

// expiry is when a key written now expires: zero when it does not.
func (a *Access) expiry() time.Time {
	if !a.cfg.ExpireAt.IsZero() {
		return a.cfg.ExpireAt
	}
	if a.cfg.ExpireAfter == 0 {
		return time.Time{}
	}
	return a.cfg.Now().Add(a.cfg.ExpireAfter)
}

// lifetime is the lifetime of a key written at now: until ExpireAt when
// set, else ExpireAfter.
func (a *Access) lifetime(now time.Time) time.Duration {
	if !a.cfg.ExpireAt.IsZero() {
		return a.cfg.ExpireAt.Sub(now)
	}
	return a.cfg.ExpireAfter
}

// region is the region of zone, as gcloud derives it: everything before
// the last '-'.
func region(zone string) string {
	if i := strings.LastIndex(zone, "-"); i > 0 {
		return zone[:i]
	}
	return ""
}

// shared makes the write named key once per Access: the first caller makes
// it, the others wait and get its result.
func (a *Access) shared(key string, write func() (*Granted, error)) (*Granted, error) {
	a.mu.Lock()
	l := a.writes[key]
	if l == nil {
		l = &lazy[*Granted]{}
		a.writes[key] = l
	}
	a.mu.Unlock()
	return l.get(write)
}
