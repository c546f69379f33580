package cli

import (
	"cmp"
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

	"github.com/gkessh/gkessh/internal/access"
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
// shared by every gkessh of this user, it plans and grants (so N proxies
// started at once by Ansible write metadata at most once and never race
// for the fingerprint), then logs in until the node takes the key, checking
// its host key as every login does, and records the stamp.
//
// It returns the stamp the warm path relied on (nil on the cold path), for
// recheckKey.
func stageKey(ctx context.Context, o proxyOptions, d *deps, a *access.Access, n access.Node, dial sshclient.DialFunc, stdio Stdio) (*stamp, error) {
	user, err := userOf(d, o.keyOptions)
	if err != nil {
		return nil, err
	}
	kp, err := a.Key()
	if err != nil {
		return nil, err
	}
	fp := ssh.FingerprintSHA256(kp.Public)
	stamps := openStamps(d, n.Project, stdio.Err)
	if s, ok := stamps.valid(n.Name, user, fp, d.now()); ok {
		return &s, nil
	}
	var (
		p      *access.Plan
		g      *access.Granted
		client *ssh.Client
	)
	err = stamps.locked(ctx, func() error {
		if _, ok := stamps.valid(n.Name, user, fp, d.now()); ok {
			return nil // another gkessh staged it while this one waited
		}
		var err error
		if p, err = a.Plan(ctx, n.Name); err != nil {
			return err
		}
		if err := o.checkRecreated(p.Node.ID); err != nil {
			return err
		}
		if p.Mode == access.OSLogin && o.User != "" && p.User != "" && o.User != p.User {
			// Without --user (a ProxyCommand gcloud wrote) ssh's user is
			// unknown: the key is staged for the POSIX user.
			return &osLoginUserError{Node: n.Name, User: o.User, Posix: p.User}
		}
		client, g, err = a.Admit(ctx, p, dial)
		if err == nil {
			if msg := granted(g, p); msg != "" {
				fmt.Fprintln(stdio.Err, msg)
			}
		}
		return err
	})
	if err != nil || p == nil {
		return nil, err
	}
	if client == nil {
		if client, err = a.Login(ctx, p, dial, o.PropagationTimeout); err != nil {
			return nil, err
		}
	}
	client.Close()
	if g.Wrote {
		fmt.Fprintf(stdio.Err, "%s accepts the key.\n", n.Name)
	}
	until := d.now().Add(permanentRecheck)
	if o.ExpireAfter > 0 {
		// A grant is left in place only while it outlives the refresh
		// margin, so the key is good at least that long.
		until = d.now().Add(keys.RefreshMargin(o.ExpireAfter))
	}
	stamps.locked(ctx, func() error {
		stamps.put(n.Name, stamp{User: user, Login: p.User, Key: fp, Until: until}, d.now())
		return nil
	})
	return nil, nil
}

// refusedBytes bounds what a server sends after key exchange to a session
// it refuses at authentication: a service accept and a failure per method
// tried, ~130 bytes for one key, ~350 for six. A session that logs in
// gets more (OpenSSH's sshd: 780 bytes and up for 'ssh NODE true').
const refusedBytes = 512

// keyRecheckTimeout bounds recheckKey: ssh has exited by then.
const keyRecheckTimeout = time.Minute

// recheckKey runs when ssh's session, on the word of a stamp, ended too
// soon after key exchange to have logged in: the key may have gone since
// (Terraform rewrote ssh-keys, a colleague cleaned up, keys remove). One
// login with the recorded host keys, which makes no API call, tells; if
// the node refuses the key, the stamp goes and the key is granted again,
// so the next ssh works, and stderr says so.
func recheckKey(ctx context.Context, o proxyOptions, d *deps, a *access.Access, n access.Node, dial sshclient.DialFunc, s *stamp, stdio Stdio) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keyRecheckTimeout)
	defer cancel()
	var refused *sshclient.KeyRefusedError
	if err := a.Verify(ctx, n, cmp.Or(s.Login, s.User), dial); !errors.As(err, &refused) {
		return nil // it works, or there is no telling: the stamp stands
	}
	stamps := openStamps(d, n.Project, stdio.Err)
	stamps.locked(ctx, func() error {
		stamps.drop(n.Name, d.now())
		return nil
	})
	p, err := a.Plan(ctx, n.Name)
	if err != nil {
		return err
	}
	g, err := a.Grant(ctx, p)
	if err != nil {
		return err
	}
	if !g.Wrote {
		return fmt.Errorf("%s refuses your key, which %s grants: its guest agent has not installed it yet (a line added seconds ago: run ssh again) or is not running (check its serial console: gkessh doctor %s)", n.Name, grantPlace(g, p), n.Name)
	}
	fmt.Fprintf(stdio.Err, "gkessh: %s refused your key: it was gone from %s since this machine last used it. %s Run ssh again.\n", n.Name, grantPlace(g, p), granted(g, p))
	return nil
}

// stamp records that a node accepted a user's key, and until when that is
// taken on trust.
type stamp struct {
	User string `json:"user"` // the user asked for (ssh's %r)
	// Login is the user logged in as, when not User: the POSIX user of
	// an OS Login profile.
	Login string    `json:"login,omitempty"`
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

// valid returns the stamp of node when it is for user and key and still
// good at now.
func (f stampFile) valid(node, user, key string, now time.Time) (stamp, bool) {
	s, ok := f.load()[node]
	return s, ok && s.User == user && s.Key == key && now.Before(s.Until)
}

// put records s for node; call it under the lock. A failure is only
// reported: the stamp is a shortcut.
func (f stampFile) put(node string, s stamp, now time.Time) {
	f.update(now, func(m map[string]stamp) { m[node] = s })
}

// drop forgets node's stamp; call it under the lock.
func (f stampFile) drop(node string, now time.Time) {
	f.update(now, func(m map[string]stamp) { delete(m, node) })
}

// forgetStamps forgets, in project, every stamp stale matches: a keys
// command that wrote metadata may have taken the key off nodes, or put it
// back before their guests installed it, so the next proxy to each checks
// and waits, rather than hand ssh a key the node refuses.
func forgetStamps(ctx context.Context, d *deps, project string, w io.Writer, stale func(stamp) bool) {
	f := openStamps(d, project, w)
	found := false
	for _, s := range f.load() {
		found = found || stale(s)
	}
	if !found {
		return
	}
	f.locked(ctx, func() error {
		f.update(d.now(), func(m map[string]stamp) {
			for node, s := range m {
				if stale(s) {
					delete(m, node)
				}
			}
		})
		return nil
	})
}

// update rewrites the file with change made and expired stamps gone.
func (f stampFile) update(now time.Time, change func(map[string]stamp)) {
	if f.path == "" {
		return
	}
	m := f.load()
	for k, old := range m {
		if !now.Before(old.Until) {
			delete(m, k)
		}
	}
	change(m)
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
