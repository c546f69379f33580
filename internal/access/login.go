package access

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/knownhosts"
	"github.com/gkessh/gkessh/sshclient"
)

// Login logs in to p's node over dial as p.User with the key, verifying
// the host key it presents (knownhosts.Verifier: published keys are pinned
// on first contact, a changed one is refused). wait > 0 retries a refused
// key for that long, for a key just written or still on its way; 0 tries
// once.
func (a *Access) Login(ctx context.Context, p *Plan, dial sshclient.DialFunc, wait time.Duration) (*ssh.Client, error) {
	kp, err := a.Key()
	if err != nil {
		return nil, err
	}
	return a.login(ctx, p, dial, wait, []ssh.Signer{kp.Signer})
}

// LoginWith logs in once, as Login does, with keys the user manages
// (gcloud's --plain): nothing is granted or waited for, and the key pair
// is neither read nor created. The host key is checked as by Login.
func (a *Access) LoginWith(ctx context.Context, p *Plan, dial sshclient.DialFunc, signers []ssh.Signer) (*ssh.Client, error) {
	return a.login(ctx, p, dial, 0, signers)
}

func (a *Access) login(ctx context.Context, p *Plan, dial sshclient.DialFunc, wait time.Duration, signers []ssh.Signer) (*ssh.Client, error) {
	check, err := a.hostKeyCheck(ctx, p)
	if err != nil {
		return nil, err
	}
	cfg := sshclient.Config{
		User: p.User, Signers: signers,
		HostKeyCallback: check.Callback, HostKeyAlgorithms: check.Algorithms,
		HostKeyAlias: knownhosts.HostAlias(p.Node.ID), Name: p.Node.Name,
		Wait: wait > 0, Timeout: wait,
		Progress: a.cfg.Progress, Live: a.cfg.Live, Logf: a.loginLogf,
	}
	return sshclient.Connect(ctx, dial, cfg)
}

// Verify logs in to n once as user, checking the host key against the
// recorded ones only, so it makes no API call: it tells whether the node
// takes the key now. It returns nil when it does, a
// *sshclient.KeyRefusedError when the node refuses it, another error when
// it could not tell.
func (a *Access) Verify(ctx context.Context, n Node, user string, dial sshclient.DialFunc) error {
	p := &Plan{Node: n, User: user}
	p.hostKeys.get(func() (HostKeys, error) {
		hk := HostKeys{Alias: knownhosts.HostAlias(n.ID)}
		var err error
		hk.Recorded, err = a.known.Lookup(hk.Alias)
		return hk, err
	})
	client, err := a.Login(ctx, p, dial, 0)
	if err == nil {
		client.Close()
	}
	return err
}

// Admit makes the key work on p's node, for one login: with a write due it
// first tries the key as it stands over probe (a fresh connection), so the
// host key is checked before anything is written and a refused host key
// leaves no key behind; then it grants. It returns the probe's client when
// the key already worked (the write then only renewed it), and what Grant
// did. With nothing due it only reports where the key is.
func (a *Access) Admit(ctx context.Context, p *Plan, probe sshclient.DialFunc) (*ssh.Client, *Granted, error) {
	var client *ssh.Client
	if p.WriteDue && p.User != "" && !a.cfg.DryRun {
		var err error
		client, err = a.Login(ctx, p, probe, 0)
		var refused *sshclient.KeyRefusedError
		if err != nil && !errors.As(err, &refused) {
			return nil, nil, err
		}
	}
	g, err := a.Grant(ctx, p)
	if err != nil {
		if client != nil {
			client.Close()
		}
		return nil, nil, err
	}
	return client, g, nil
}

// hostKeyCheck prepares the check of the host key p's node presents,
// applying the one host key policy (knownhosts.Pin) to the keys its guest
// published, and says on Config.Warn what it pinned or replaced. The
// published keys are read (once per plan, with ctx) only when they can
// matter: on first contact, under AcceptChanged, or when the node presents
// a key not recorded for it; a warm login reads none, so a fleet of N
// known nodes costs no N API calls.
func (a *Access) hostKeyCheck(ctx context.Context, p *Plan) (*knownhosts.HostKeyCheck, error) {
	alias := knownhosts.HostAlias(p.Node.ID)
	v := knownhosts.Verifier{
		File: a.known, Node: p.Node.Name, Alias: alias,
		Source: PublishedSource(p.Node), Accept: a.cfg.AcceptChanged, Mode: a.cfg.Strict, Warn: a.cfg.Warn,
		Publish: func() ([]ssh.PublicKey, error) { return a.published(ctx, p) },
		OnPin: func(pinned knownhosts.Pinned) {
			a.reportPinned(p, pinned.Added)
			published, _ := a.published(ctx, p) // read already
			ReportReplaced(a.cfg.Warn, p.Node, alias, pinned.Replaced, published)
		},
	}
	return v.Prepare(ctx)
}

// reportPinned says on Config.Warn that added, published by p's node's
// guest, are now recorded for it.
func (a *Access) reportPinned(p *Plan, added []ssh.PublicKey) {
	if len(added) > 0 {
		fmt.Fprintf(a.cfg.Warn, "Pinned %d host keys of %s published by its guest (%s) in %s.\n", len(added), p.Node.Name, knownhosts.HostAlias(p.Node.ID), a.cfg.KnownHosts)
	}
}

// published reads, once per plan, the host keys p's node's guest
// published, for its logins' checks. Keys it cannot read are said once on
// Config.Warn, not fatal: the recorded keys, or trust on first use, still
// apply.
func (a *Access) published(ctx context.Context, p *Plan) ([]ssh.PublicKey, error) {
	return p.published.get(func() ([]ssh.PublicKey, error) {
		hk, err := a.HostKeys(ctx, p)
		if err != nil {
			return nil, err
		}
		if hk.Unread != nil {
			fmt.Fprintf(a.cfg.Warn, "gkessh: warning: %v\n", hk.Unread)
			a.cfg.Logf("%s: %v", p.Node.Name, hk.Unread)
		}
		return hk.Published, nil
	})
}

// ReportReplaced says on w which recorded host keys the published ones
// replaced (Config.AcceptChanged), and with what.
func ReportReplaced(w io.Writer, n Node, alias string, old, published []ssh.PublicKey) {
	if len(old) == 0 {
		return
	}
	fmt.Fprintf(w, "Replaced the host keys of %s (%s): %s, with the ones in %s: %s.\n",
		n.Name, alias, knownhosts.Fingerprints(old), PublishedSource(n), knownhosts.Fingerprints(published))
}

// PinFirstContacts pins, in one rewrite of known_hosts, the published
// host keys of the plans' nodes that nothing is recorded for yet, reading
// them up to parallel at a time (the reads are each plan's own, so a
// login meanwhile waits for its node's rather than reading again). A
// fleet's first contacts would otherwise each wait for a rewrite of a
// file that grows with N: one every few nodes, each synced to disk. A
// node whose keys cannot be read, or that publishes none, is left to its
// login's check, which says why.
func (a *Access) PinFirstContacts(ctx context.Context, plans []*Plan, parallel int) {
	if a.cfg.Strict == knownhosts.StrictNo || a.cfg.DryRun {
		return
	}
	var first []*Plan
	for _, p := range plans {
		if p == nil || p.Inst == nil {
			continue
		}
		if rec, err := a.known.Lookup(knownhosts.HostAlias(p.Node.ID)); err == nil && len(rec.Keys) == 0 {
			first = append(first, p)
		}
	}
	published := make([][]ssh.PublicKey, len(first))
	slots := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for i, p := range first {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-slots }()
			published[i], _ = a.published(ctx, p)
		})
	}
	wg.Wait()
	var pins []knownhosts.Pin
	var pinned []*Plan
	for i, p := range first {
		if len(published[i]) > 0 {
			pins = append(pins, knownhosts.Pin{Node: p.Node.Name, Alias: knownhosts.HostAlias(p.Node.ID), Source: PublishedSource(p.Node), Published: published[i]})
			pinned = append(pinned, p)
		}
	}
	if len(pins) == 0 {
		return
	}
	did, errs := a.known.PinAll(ctx, pins, a.cfg.AcceptChanged)
	for i, p := range pinned {
		if errs[i] == nil && len(did[i].Added) > 0 {
			a.reportPinned(p, did[i].Added)
		}
	}
}
