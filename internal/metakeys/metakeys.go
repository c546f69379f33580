package metakeys

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/keys"
)

// EnsureOptions tune Ensure.
type EnsureOptions struct {
	User        string        // the user the key logs in as; required
	Scope       string        // "", keys.ScopeProject or keys.ScopeInstance; "" picks as gcloud does
	ExpireAfter time.Duration // lifetime of the written line; 0 writes a permanent one
	// ExpireAt, when set, is when the written line expires, however long
	// the write took to come (ExpireAfter is then ignored).
	ExpireAt time.Time
	// Comment is the key's comment (its .pub's, "user@host"), which a
	// permanent line keeps as gcloud writes it: gcloud takes a line
	// without it for another key and adds its own. Expiring lines carry
	// none, as gcloud's do not.
	Comment string
	// ExactExpiry: the lifetime was asked for, so an expiring line far
	// from it (a 24 h line when 30 m is asked) is replaced (Lasts).
	ExactExpiry bool
	DryRun      bool // decide, but write nothing
	// Project is the project as the caller already read it (its common
	// metadata); nil reads it.
	Project *gce.Project
	Now     func() time.Time
	Logf    func(format string, args ...any)
}

// EnsureResult says what Ensure did.
type EnsureResult struct {
	Wrote bool   // a line was written (with DryRun: would have been)
	Scope string // where the key is or went
	Item  string // the metadata item: ssh-keys, or legacy sshKeys
	Line  string // the line written, "" when none was
	// ProjectRefused: the project write got 403, so the key went to the
	// instance's own metadata instead, as gcloud does.
	ProjectRefused bool
}

// Ensure makes sure user's key pub is in the metadata that grants access to
// inst, writing only when it is missing or about to expire. inst may be nil
// to target project metadata without a particular node in mind. Whether
// the node reads metadata keys at all (OS Login) is the caller's to know.
//
// Scope "" means project metadata unless the instance ignores it
// (block-project-ssh-keys) or still uses the legacy sshKeys item, in which
// case the instance's own metadata, as gcloud chooses. The write is a
// fingerprint read-modify-write retried on conflict; every other line and
// item stays as it was.
func Ensure(ctx context.Context, c *gce.Client, inst *gce.Instance, pub ssh.PublicKey, opts EnsureOptions) (EnsureResult, error) {
	if opts.User == "" {
		return EnsureResult{}, keys.ErrNoUser
	}
	if err := keys.CheckUser(opts.User); err != nil {
		return EnsureResult{}, err
	}
	proj := opts.Project
	if proj == nil {
		var err error
		if proj, err = c.Project(ctx); err != nil {
			return EnsureResult{}, err
		}
	}
	t, err := target(opts.Scope, inst)
	if err != nil {
		return EnsureResult{}, err
	}
	if t.scope == keys.ScopeInstance && opts.Scope == "" && opts.Logf != nil {
		opts.Logf("instance %s ignores project-wide keys (block-project-ssh-keys or legacy sshKeys): using its own metadata", inst.Name)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	res := EnsureResult{Scope: t.scope, Item: t.key}
	edit := func(md *gce.Metadata) (bool, error) {
		value, _ := gce.MetadataValue(md, t.key)
		n := now()
		life, err := opts.lifetime(n)
		if err != nil {
			return false, err
		}
		lines, line := keys.Upsert(keys.ParseLines(value), opts.User, pub, opts.Comment, n, life, opts.ExactExpiry)
		res.Line, res.Wrote = line, line != ""
		if line == "" || opts.DryRun {
			return false, nil
		}
		return true, setLines(md, t.key, lines)
	}
	_, err = t.update(ctx, c, proj, inst, edit)
	if err != nil && t.scope == keys.ScopeProject && opts.Scope == "" && inst != nil && forbidden(err) {
		// As gcloud does: a refused project write falls back to the
		// instance's own ssh-keys, which its guest reads too.
		t, _ = target(keys.ScopeInstance, inst)
		res.Scope, res.Item, res.ProjectRefused = t.scope, t.key, true
		_, err = t.update(ctx, c, proj, inst, edit)
	}
	if err != nil {
		return EnsureResult{}, err
	}
	return res, nil
}

// Due says what Ensure would write, judged from the project and instance as
// already read (proj may be nil for an instance that blocks project keys):
// it makes no call. Wrote says a write is due, and Line is the line.
func Due(proj *gce.Project, inst *gce.Instance, pub ssh.PublicKey, opts EnsureOptions) (EnsureResult, error) {
	if opts.User == "" {
		return EnsureResult{}, keys.ErrNoUser
	}
	if err := keys.CheckUser(opts.User); err != nil {
		return EnsureResult{}, err
	}
	t, err := target(opts.Scope, inst)
	if err != nil {
		return EnsureResult{}, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	var md *gce.Metadata
	switch {
	case t.scope == keys.ScopeInstance:
		md = inst.Metadata
	case proj != nil:
		md = proj.CommonInstanceMetadata
	}
	value, _ := gce.MetadataValue(md, t.key)
	n := now()
	life, err := opts.lifetime(n)
	if err != nil {
		return EnsureResult{}, err
	}
	_, line := keys.Upsert(keys.ParseLines(value), opts.User, pub, opts.Comment, n, life, opts.ExactExpiry)
	return EnsureResult{Scope: t.scope, Item: t.key, Line: line, Wrote: line != ""}, nil
}

// lifetime is the lifetime of a line written at now: until ExpireAt when
// set, else ExpireAfter.
func (o EnsureOptions) lifetime(now time.Time) (time.Duration, error) {
	if o.ExpireAt.IsZero() {
		return o.ExpireAfter, nil
	}
	if !o.ExpireAt.After(now) {
		return 0, fmt.Errorf("the key line was to expire at %s, which has passed", o.ExpireAt.UTC().Format(time.RFC3339))
	}
	return o.ExpireAt.Sub(now), nil
}

func forbidden(err error) bool {
	var ae *gce.APIError
	return errors.As(err, &ae) && ae.Code == http.StatusForbidden
}

// Scope returns where Ensure would put a key for inst with the given
// --scope value ("" picks as gcloud does): keys.ScopeProject or keys.ScopeInstance.
// A caller writing one key for many nodes uses it to write project
// metadata once and only the nodes that ignore it their own.
func Scope(scope string, inst *gce.Instance) (string, error) {
	t, err := target(scope, inst)
	return t.scope, err
}

// metadataTarget is one scope's metadata and the item keys go into.
type metadataTarget struct {
	scope string
	key   string
	zone  string // instance scope only
	name  string
}

// target picks where a key for inst goes. Project keys are ignored by an
// instance that sets block-project-ssh-keys or has a legacy sshKeys item;
// for the latter gcloud appends to sshKeys, which the guest reads with
// ssh-keys.
func target(scope string, inst *gce.Instance) (metadataTarget, error) {
	if inst == nil {
		if scope == keys.ScopeInstance {
			return metadataTarget{}, ErrInstanceScopeNeedsInstance
		}
		return metadataTarget{scope: keys.ScopeProject, key: keys.MetadataKey}, nil
	}
	legacy, _ := gce.MetadataValue(inst.Metadata, keys.LegacyMetadataKey)
	blocked := gce.BlocksProjectSSHKeys(inst) || legacy != ""
	it := metadataTarget{scope: keys.ScopeInstance, key: keys.MetadataKey, zone: gce.ZoneName(inst.Zone), name: inst.Name}
	if legacy != "" {
		it.key = keys.LegacyMetadataKey
	}
	switch scope {
	case keys.ScopeProject:
		if blocked {
			return metadataTarget{}, &ProjectKeysBlockedError{Instance: inst.Name}
		}
		return metadataTarget{scope: keys.ScopeProject, key: keys.MetadataKey}, nil
	case keys.ScopeInstance:
		return it, nil
	case "":
		if blocked {
			return it, nil
		}
		return metadataTarget{scope: keys.ScopeProject, key: keys.MetadataKey}, nil
	}
	return metadataTarget{}, fmt.Errorf("keys: unknown scope %q: use project or instance", scope)
}

// update runs the read-modify-write for t, starting from the metadata the
// caller already read.
func (t metadataTarget) update(ctx context.Context, c *gce.Client, proj *gce.Project, inst *gce.Instance, edit func(*gce.Metadata) (bool, error)) (bool, error) {
	var changed bool
	var err error
	if t.scope == keys.ScopeProject {
		var first *gce.Metadata
		if proj != nil {
			first = proj.CommonInstanceMetadata
		}
		changed, err = c.UpdateProjectMetadata(ctx, first, edit)
	} else {
		var first *gce.Metadata
		if inst != nil {
			first = inst.Metadata
		}
		changed, err = c.UpdateInstanceMetadata(ctx, t.zone, t.name, first, edit)
	}
	switch {
	case err == nil || !forbidden(err):
	case t.scope == keys.ScopeProject:
		return false, &ProjectWriteDeniedError{Err: err}
	case inst != nil && len(inst.ServiceAccounts) > 0 && strings.Contains(err.Error(), permActAs):
		return false, fmt.Errorf("%w: grant roles/iam.serviceAccountUser on it", err)
	case inst != nil && len(inst.ServiceAccounts) > 0:
		// gcloud's troubleshooter names this one: the VM's account.
		return false, fmt.Errorf("%w; the instance runs as service account %s, so it also needs %s on that account (roles/iam.serviceAccountUser)",
			err, inst.ServiceAccounts[0].Email, permActAs)
	}
	return changed, err
}

const permActAs = "iam.serviceAccounts.actAs"

// setLines stores lines as md's key item, refusing to go over the size
// limit rather than dropping anyone's keys to make room.
func setLines(md *gce.Metadata, key string, lines []keys.Line) error {
	value := keys.JoinLines(lines)
	if len(value) > keys.MaxValueBytes {
		return &TooBigError{Key: key, Size: len(value), Limit: keys.MaxValueBytes}
	}
	gce.SetMetadataValue(md, key, value)
	return nil
}

// RemoveOptions tune Remove.
type RemoveOptions struct {
	Scope  string // keys.ScopeProject, or keys.ScopeInstance (needs the instance)
	DryRun bool   // find the lines, but write nothing
}

// Removed is a line Remove took out (or, with DryRun, would have).
type Removed struct {
	Scope string
	Item  string // ssh-keys or sshKeys
	Line  keys.Line
}

// Remove deletes the lines sel picks from both ssh-keys items (ssh-keys and
// legacy sshKeys) of one scope, in one fingerprint-checked write, keeping
// every other line byte for byte.
func Remove(ctx context.Context, c *gce.Client, inst *gce.Instance, sel keys.Selector, opts RemoveOptions) ([]Removed, error) {
	t := metadataTarget{scope: opts.Scope}
	switch opts.Scope {
	case keys.ScopeProject:
	case keys.ScopeInstance:
		if inst == nil {
			return nil, ErrInstanceScopeNeedsInstance
		}
		t.zone, t.name = gce.ZoneName(inst.Zone), inst.Name
	default:
		return nil, fmt.Errorf("keys: unknown scope %q: use project or instance", opts.Scope)
	}
	var gone []Removed
	edit := func(md *gce.Metadata) (bool, error) {
		gone = gone[:0]
		for _, key := range []string{keys.MetadataKey, keys.LegacyMetadataKey} {
			value, ok := gce.MetadataValue(md, key)
			if !ok {
				continue
			}
			kept, g := keys.RemoveLines(keys.ParseLines(value), sel)
			for _, l := range g {
				gone = append(gone, Removed{Scope: t.scope, Item: key, Line: l})
			}
			if len(g) > 0 {
				gce.SetMetadataValue(md, key, keys.JoinLines(kept))
			}
		}
		return len(gone) > 0 && !opts.DryRun, nil
	}
	if _, err := t.update(ctx, c, nil, inst, edit); err != nil {
		return nil, err
	}
	return gone, nil
}
