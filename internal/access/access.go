// Package access decides how a user gets onto a node, and gets them there:
// Plan reads, never writing, everything the decision needs (the instance,
// whether its guest takes metadata keys or OS Login, the user to log in
// as, where a key line goes, whether a write is due, the host keys to
// trust); Grant makes the one write (a metadata line or an OS Login
// import); Login dials, waits for the key to reach the node and verifies
// its host key. One Access serves one node or a fleet: the project, the
// OS Login profile and the shared writes are read and made once for all
// its plans.
package access

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/knownhosts"
)

// Mode is how a node takes a user's key.
type Mode int

const (
	// MetadataKeys: the guest installs ssh-keys lines from project and
	// instance metadata.
	MetadataKeys Mode = iota
	// OSLogin: the guest ignores metadata keys and installs those of the
	// OS Login profiles allowed on the instance; the login is as the
	// profile's POSIX user.
	OSLogin
)

func (m Mode) String() string {
	if m == OSLogin {
		return "OS Login"
	}
	return "metadata keys"
}

// Config is what an Access works from. Zero values are usable defaults
// except where a field says otherwise.
type Config struct {
	// Project is the project the nodes are in; required.
	Project string
	// Zone, when set, is the only zone a node is looked for in.
	Zone string
	// DefaultZone (gcloud's compute/zone) is where a node is looked for
	// first, as gcloud does, so a name in several zones means the one
	// there; unlike gcloud, a node not there is still looked for
	// elsewhere.
	DefaultZone string
	// Compute returns the Compute API client; it is called at most once,
	// and only when an answer needs the API (a warm Resolve does not).
	Compute func(ctx context.Context) (*gce.Client, error)
	// Zones caches where nodes live; nil caches nothing.
	Zones *gce.Cache
	// Suggest: a name no instance has gets the names near it
	// (gce.NoInstanceError.Near), at the cost of one more list of the
	// project. For a person who typed the name, not for a ProxyCommand,
	// which a stale inventory runs once per deleted node.
	Suggest bool

	// User is who logs in where metadata keys apply, and whose lines
	// they are; required for Plan.
	User string
	// KeyFile is the private key file; Plan reads its public half, when
	// there, to judge whether a write is due.
	KeyFile string
	// Key returns the key pair, creating it when missing. It is called at
	// most once, by Grant or Login, so a node that cannot be reached
	// leaves no key file behind.
	Key func() (*keys.KeyPair, error)
	// Scope is keys.ScopeProject, keys.ScopeInstance, or "" to pick as
	// gcloud does.
	Scope string
	// ExpireAfter is the lifetime of a written line or imported key; 0
	// writes one that never expires.
	ExpireAfter time.Duration
	// ExpireAt, when set, is when a written line or imported key
	// expires, however long the work before the write took (ExpireAfter
	// is then ignored): the time the user asked for.
	ExpireAt time.Time
	// ExactExpiry: the user asked for ExpireAfter, so a grant that
	// expires far from it is renewed with it (keys.Lasts): shortened or
	// extended.
	ExactExpiry bool
	// Account returns the account whose OS Login profile holds the key;
	// it is called at most once, for the first node under OS Login.
	Account func() (string, error)
	// NoOSLogin refuses nodes under OS Login (ErrOSLogin) instead of
	// putting the key into the profile.
	NoOSLogin bool

	// KnownHosts is the known_hosts file host keys are checked against
	// and pinned in; Strict and AcceptChanged are its policy
	// (knownhosts.Verifier).
	KnownHosts    string
	Strict        knownhosts.StrictMode
	AcceptChanged bool

	// DryRun: Grant says what it would write and writes nothing, and the
	// zone cache is left as it is.
	DryRun bool

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logf hears what is being done; nil discards.
	Logf func(format string, args ...any)
	// Warn receives the notes a user should see: host keys pinned or
	// replaced, published keys that could not be read. nil discards.
	Warn io.Writer
	// Progress, when set, shows the wait for a key to reach a node;
	// Live redraws it in place, for a terminal.
	Progress io.Writer
	Live     bool
}

// Access plans, grants and logs in for one user and key, on one node or
// many. It is safe for concurrent use.
type Access struct {
	cfg Config
	// loginLogf is Config.Logf as given: the login's attempts are logged
	// only when someone listens.
	loginLogf func(format string, args ...any)

	// known is Config.KnownHosts, parsed once for all the plans.
	known knownhosts.KnownHosts

	compute lazy[*gce.Client]
	project lazy[*gce.Project]
	key     lazy[*keys.KeyPair]
	profile lazy[*profile]

	mu     sync.Mutex
	writes map[string]*lazy[*Granted] // the writes made once for every plan
}

// New returns an Access working from cfg.
func New(cfg Config) *Access {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	loginLogf := cfg.Logf
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Warn == nil {
		cfg.Warn = io.Discard
	}
	if cfg.Strict == "" {
		cfg.Strict = knownhosts.StrictAcceptNew
	}
	return &Access{cfg: cfg, loginLogf: loginLogf, known: knownhosts.Shared(cfg.KnownHosts), writes: map[string]*lazy[*Granted]{}}
}

// KnownHosts is the known_hosts file host keys are checked against,
// shared by the Access's plans.
func (a *Access) KnownHosts() knownhosts.KnownHosts { return a.known }

// Compute is the Compute API client, built on first use.
func (a *Access) Compute(ctx context.Context) (*gce.Client, error) {
	return a.compute.get(func() (*gce.Client, error) { return a.cfg.Compute(ctx) })
}

// Project is the project's resource (its common metadata), read once.
func (a *Access) Project(ctx context.Context) (*gce.Project, error) {
	return a.project.get(func() (*gce.Project, error) {
		c, err := a.Compute(ctx)
		if err != nil {
			return nil, err
		}
		return c.Project(ctx)
	})
}

// Key is the key pair, loaded (or created) once.
func (a *Access) Key() (*keys.KeyPair, error) {
	return a.key.get(a.cfg.Key)
}

// Close releases the key pair's agent connection, if one was opened.
func (a *Access) Close() error {
	if kp, err := a.key.peek(); err == nil && kp != nil {
		return kp.Close()
	}
	return nil
}

// lazy is a value made once, on first use, by whichever caller comes
// first; the others wait for it. An error is kept like a value.
type lazy[T any] struct {
	once sync.Once
	v    T
	err  error
	done bool
	mu   sync.Mutex
}

func (l *lazy[T]) get(make func() (T, error)) (T, error) {
	l.once.Do(func() {
		v, err := make()
		l.mu.Lock()
		l.v, l.err, l.done = v, err, true
		l.mu.Unlock()
	})
	return l.v, l.err
}

// peek returns the value if it was made, without making it.
func (l *lazy[T]) peek() (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var zero T
	if !l.done {
		return zero, nil
	}
	return l.v, l.err
}
