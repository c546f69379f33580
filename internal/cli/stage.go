package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/atomicfile"
	"github.com/gkessh/gkessh/internal/filelock"
	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/sshclient"
)

// permanentRecheck is how long a node that accepted a permanent key is
// trusted to keep accepting it before the proxy looks at metadata again.
const permanentRecheck = 24 * time.Hour

// stageKey makes sure, before `gkessh proxy` hands the stream to ssh, that
// user's key is in metadata (under OS Login: in the login profile, for its
// POSIX user only) and installed on the node: ssh offers the key
// once and fails with "Permission denied" if the guest agent is still
// catching up, so the proxy does gcloud's propagation wait itself.
//
// Warm path: a stamp in the cache says this node accepted this key recently
// enough, and stageKey returns with no API call. Otherwise, under a lock
// shared by every gkessh of this user, it ensures the key (so N proxies
// started at once by Ansible write metadata at most once and never race
// for the fingerprint), then probes the node's sshd until it takes the key,
// and records the stamp.
func stageKey(ctx context.Context, o proxyOptions, d *deps, r resolved, dial sshclient.DialFunc, stdio Stdio) error {
	user, kp, err := d.userKey(o.keyOptions, stdio.Err)
	if err != nil {
		return err
	}
	defer kp.Close()
	fp := ssh.FingerprintSHA256(kp.Public)
	stamps := openStamps(d, r.Project, stdio.Err)
	if stamps.valid(r.Name, user, fp, d.now()) {
		return nil
	}
	var wrote bool
	login := user // under OS Login, the profile's POSIX user
	err = stamps.locked(ctx, func() error {
		if stamps.valid(r.Name, user, fp, d.now()) {
			return nil // another gkessh staged it while this one waited
		}
		c, err := d.compute(ctx, o.globalOptions)
		if err != nil {
			return err
		}
		_, inst, err := d.instance(ctx, o.globalOptions, c, r.Name)
		if err != nil {
			return err
		}
		if err := o.checkRecreated(inst.Id); err != nil {
			return err
		}
		res, where, err := ensureKey(ctx, c, o.keyOptions, r, inst, kp.Public, keys.EnsureOptions{User: user})
		var ole *osLoginError
		if errors.As(err, &ole) {
			// Without --user (a ProxyCommand gcloud wrote) ssh's user is
			// unknown: stage the key for the POSIX user.
			wrote = true
			login, err = d.importOSLoginKeyFor(ctx, c, r.Name, o.User, kp.Public, o.ExpireAfter, sayTo(stdio.Err))
			return err
		}
		if err != nil {
			return err
		}
		if res.Wrote {
			fmt.Fprintf(stdio.Err, "Added %s's key to %s.\n", user, where)
		}
		wrote = res.Wrote
		return nil
	})
	if err != nil {
		return err
	}
	// The probe logs in only to see the key accepted; it sends nothing
	// secret (a public-key signature is bound to this session and cannot
	// be replayed elsewhere), and ssh verifies the host key right after.
	client, err := sshclient.Connect(ctx, dial, sshclient.Config{
		User:            login,
		Signers:         []ssh.Signer{kp.Signer},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Name:            r.Name,
		Wait:            true,
		Timeout:         o.PropagationTimeout,
		Progress:        stdio.Err,
		Live:            isTerminal(stdio.Err),
	})
	if err != nil {
		return err
	}
	client.Close()
	if wrote {
		fmt.Fprintf(stdio.Err, "%s accepts the key.\n", r.Name)
	}
	until := d.now().Add(permanentRecheck)
	if o.ExpireAfter > 0 {
		// Ensure leaves a line in place only while it outlives the
		// refresh margin, so the key is good at least that long.
		until = d.now().Add(keys.RefreshMargin(o.ExpireAfter))
	}
	stamps.locked(ctx, func() error {
		stamps.put(r.Name, stamp{User: user, Key: fp, Until: until}, d.now())
		return nil
	})
	return nil
}

// stamp records that a node accepted a user's key, and until when that is
// taken on trust.
type stamp struct {
	User  string    `json:"user"`
	Key   string    `json:"key"` // SHA256 fingerprint
	Until time.Time `json:"until"`
}

// stampFile is the per-project file of stamps, with the lock file that
// serializes staging across processes. The stamps are only a shortcut: when
// the cache directory cannot be written, the proxy says so once and carries
// on without them (every start then checks the key, unlocked).
type stampFile struct {
	path, lock string
	warn       func(error) // says, once, that the cache is not usable
}

func openStamps(d *deps, project string, w io.Writer) stampFile {
	var once sync.Once
	f := stampFile{warn: func(err error) {
		once.Do(func() {
			fmt.Fprintf(w, "gkessh: warning: carrying on without the cache (each connection checks the key): %v\n", err)
		})
	}}
	dir, err := d.stateDir()
	if err == nil {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		f.warn(err)
		return f
	}
	base := filepath.Join(dir, "staged-"+url.PathEscape(project))
	f.path, f.lock = base+".json", base+".lock"
	return f
}

func (f stampFile) load() map[string]stamp {
	m := map[string]stamp{}
	if f.path == "" {
		return m
	}
	if b, err := os.ReadFile(f.path); err == nil {
		json.Unmarshal(b, &m) // a broken file is an empty one: stamps are only a shortcut
	}
	return m
}

func (f stampFile) valid(node, user, key string, now time.Time) bool {
	s, ok := f.load()[node]
	return ok && s.User == user && s.Key == key && now.Before(s.Until)
}

// put records s for node; call it under the lock. A failure is only
// reported: the stamp is a shortcut.
func (f stampFile) put(node string, s stamp, now time.Time) {
	if f.path == "" {
		return
	}
	m := f.load()
	for k, old := range m {
		if !now.Before(old.Until) {
			delete(m, k)
		}
	}
	m[node] = s
	b, _ := json.MarshalIndent(m, "", "  ") // a map of plain values always encodes
	if err := atomicfile.WriteFile(f.path, append(b, '\n'), atomicfile.Options{}); err != nil {
		f.warn(err)
	}
}

// locked runs fn holding the lock file, shared by every gkessh of this
// user; ctx cancels the wait. Without a usable lock file fn runs unlocked:
// concurrent proxies may then both write metadata, which the fingerprint
// keeps safe.
func (f stampFile) locked(ctx context.Context, fn func() error) error {
	if f.lock == "" {
		return fn()
	}
	release, err := filelock.Lock(ctx, f.lock)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		f.warn(err)
		return fn()
	}
	defer release()
	return fn()
}
