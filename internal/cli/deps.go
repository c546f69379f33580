package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/gkessh/gkessh/internal/auth"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/gcloud"
	"github.com/gkessh/gkessh/internal/transport"
	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/knownhosts"
	"github.com/gkessh/gkessh/tunnel"
)

// deps builds what the commands take from outside their flags, as gh's
// Factory does: the transport, the token source, the Compute client, the
// IAP dialer, the zone cache, the logger, from the global flags, and the
// paths and clock they rest on. It holds constructors only, and nothing changes it once
// built: Main builds one per run with newDeps and hands it to every runX;
// tests build theirs over an emulator and a temporary home (replacing the
// fields below the constructors) and call runX directly. Options stay
// plain data; what options mean in terms of deps (the project, the user,
// the key file) is a function of both (projectOf, userOf, keyFileOf).
type deps struct {
	// transport is the run's one transport, made once from the first
	// call's flags: the proxy, CA file, client certificate, endpoints and
	// headers of every connection to Google. close stops what it started
	// (an enterprise certificate signer).
	transport func(g globalOptions) (*transport.Transport, error)
	close     func()
	// tokenSource is the run's one access-token source, shared by the
	// Compute client and the IAP dialer, so a login mints one token, not
	// one per client: made once, from the first call's flags. It caches
	// tokens itself (in memory, and in the state directory's tokens/
	// unless a dry run) and drops one a server refuses.
	tokenSource func(ctx context.Context, g globalOptions) (*auth.Source, error)
	// compute returns a Compute API client for the flags' project.
	compute func(ctx context.Context, g globalOptions) (*gce.Client, error)
	// iapDialer returns the IAP tunnel dialer: the flags' relay, the
	// token source, a User-Agent naming gkessh, and reconnects logged
	// with --verbose.
	iapDialer func(ctx context.Context, g globalOptions) (*tunnel.Dialer, error)
	// zoneCache is the on-disk cache of instance zones, read-only for a
	// dry run.
	zoneCache func(g globalOptions) (*gce.Cache, error)
	// logger logs to log when on (--verbose), and discards otherwise.
	logger func(on bool) func(format string, args ...any)

	// What the constructors are built from.
	//
	// newTokenSource finds the credentials (authSource, in creds.go): the
	// one place that decides how.
	newTokenSource func(ctx context.Context, g globalOptions, env gcloud.LookupEnv, cacheDir string, logf func(string, ...any), cfg *gcloud.Config, tr *transport.Transport) (*auth.Source, error)
	// newTransport builds the transport of every connection to Google
	// (transportFor, in transport.go).
	newTransport func(cfg *gcloud.Config, g globalOptions, env gcloud.LookupEnv, logf func(string, ...any)) (*transport.Transport, error)
	// env looks up environment variables: the process's, or a test's, so
	// that tests run gkessh side by side, each in its own environment.
	env gcloud.LookupEnv
	// environ lists the environment env looks in, for what is passed on
	// by pattern (ssh's SendEnv LANG LC_*).
	environ func() []string
	// gcloudConfig is the active gcloud configuration, read once.
	gcloudConfig func() (*gcloud.Config, error)
	// newCompute builds a Compute API client.
	newCompute func(ctx context.Context, project, endpoint string, ts oauth2.TokenSource) (*gce.Client, error)
	// gcloud reads a property of the active gcloud configuration as gcloud
	// does (its CLOUDSDK_SECTION_NAME variable first): core/project,
	// core/account (whose OS Login profile holds the key, and which names
	// the remote user when the local login name will not do),
	// auth/impersonate_service_account, compute/zone.
	gcloud func(section, name string) (string, error)
	// stateDir is gkessh's one state directory, the user cache
	// directory's gkessh/: the zone cache, the proxy's stamps, and the
	// token cache in tokens/.
	stateDir func() (string, error)
	// Paths and names with defaults from the user's home and login.
	keyPath    func() (string, error) // the default --key-file
	knownHosts func() (string, error) // google_compute_known_hosts
	sshConfig  func() (string, error) // the default --ssh-config-file
	localUser  func() (string, error) // the local login name
	executable func() (string, error) // this binary, for ProxyCommand
	log        io.Writer              // where verbose lines go
	now        func() time.Time
	// userSaid: why the default user is not the local name is said once
	// a run (userOf).
	userSaid sync.Once
}

// newDeps returns the real world: gcloud's and the user's files, Google's
// endpoints unless flags say otherwise, the system clock.
func newDeps(stdio Stdio) *deps {
	d := &deps{
		newTokenSource: authSource,
		newTransport:   transportFor,
		newCompute:     gce.New,
		env:            os.LookupEnv,
		environ:        os.Environ,
		stateDir: func() (string, error) {
			dir, err := os.UserCacheDir()
			if err != nil {
				return "", fmt.Errorf("find the cache directory (set HOME or XDG_CACHE_HOME): %w", err)
			}
			return filepath.Join(dir, "gkessh"), nil
		},
		keyPath:    keys.DefaultPath,
		knownHosts: knownhosts.DefaultKnownHostsPath,
		sshConfig: func() (string, error) {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("no home directory: %w", err)
			}
			return filepath.Join(home, ".ssh", "config"), nil
		},
		localUser:  keys.LocalUser,
		executable: os.Executable,
		log:        stdio.Err,
		now:        time.Now,
	}
	// The constructors read the fields above when called, so a test's
	// replacements apply.
	d.gcloudConfig = sync.OnceValues(func() (*gcloud.Config, error) { return gcloud.Load(d.env) })
	d.gcloud = func(section, name string) (string, error) {
		cfg, err := d.gcloudConfig()
		if err != nil {
			return "", err
		}
		return cfg.Get(section, name), nil
	}
	d.logger = func(on bool) func(string, ...any) {
		return func(format string, args ...any) {
			if on {
				fmt.Fprintf(d.log, "gkessh: "+format+"\n", args...)
			}
		}
	}
	var (
		trOnce sync.Once
		tr     *transport.Transport
		trErr  error
	)
	d.transport = func(g globalOptions) (*transport.Transport, error) {
		trOnce.Do(func() {
			cfg, err := d.gcloudConfig()
			if err != nil {
				trErr = err
				return
			}
			tr, trErr = d.newTransport(cfg, g, d.env, d.logger(g.Verbose))
		})
		return tr, trErr
	}
	d.close = func() {
		if tr != nil {
			tr.Close()
		}
	}
	var (
		tokenOnce sync.Once
		tokens    *auth.Source
		tokenErr  error
	)
	d.tokenSource = func(ctx context.Context, g globalOptions) (*auth.Source, error) {
		tokenOnce.Do(func() {
			logf := d.logger(g.Verbose)
			cacheDir := ""
			if dir, err := d.stateDir(); err != nil {
				logf("auth: no disk token cache: %v", err)
			} else if !g.DryRun {
				cacheDir = filepath.Join(dir, "tokens")
			}
			cfg, err := d.gcloudConfig()
			if err != nil {
				tokenErr = err
				return
			}
			tr, err := d.transport(g)
			if err != nil {
				tokenErr = err
				return
			}
			tokens, tokenErr = d.newTokenSource(ctx, g, d.env, cacheDir, logf, cfg, tr)
			if tokenErr == nil && tokens.Cleartext != "" {
				fmt.Fprintf(d.log, "gkessh: warning: the token endpoint %s is plain http:// on another machine: the secret of %s goes there in clear, for anyone on the way to read; make it https://\n", printable(tokens.Cleartext), printable(tokens.Kind))
			}
		})
		return tokens, tokenErr
	}
	d.compute = func(ctx context.Context, g globalOptions) (*gce.Client, error) {
		project, err := projectOf(d, g)
		if err != nil {
			return nil, err
		}
		ts, err := d.tokenSource(ctx, g)
		if err != nil {
			return nil, err
		}
		tr, err := d.transport(g)
		if err != nil {
			return nil, err
		}
		c, err := d.newCompute(ctx, project, tr.Endpoint(transport.Compute).URL, ts)
		if err != nil {
			return nil, err
		}
		c.UserAgent = "gkessh/" + Version
		c.HTTP, c.APIs = tr.HTTPClient(), otherAPIs(tr)
		return c, nil
	}
	d.iapDialer = func(ctx context.Context, g globalOptions) (*tunnel.Dialer, error) {
		ts, err := d.tokenSource(ctx, g)
		if err != nil {
			return nil, err
		}
		tr, err := d.transport(g)
		if err != nil {
			return nil, err
		}
		ws, err := tr.WSDialer()
		if err != nil {
			return nil, err
		}
		dl := &tunnel.Dialer{Endpoint: tr.Relay().URL, TokenSource: ts, UserAgent: "gkessh/" + Version, WS: ws, Header: tr.RelayHeader()}
		if g.Verbose {
			dl.Logf = d.logger(true)
		}
		return dl, nil
	}
	d.zoneCache = func(g globalOptions) (*gce.Cache, error) {
		dir, err := d.stateDir()
		if err != nil {
			return nil, err
		}
		return &gce.Cache{Dir: dir, Now: d.now, ReadOnly: g.DryRun}, nil
	}
	return d
}

// projectOf is --project (or CLOUDSDK_CORE_PROJECT), else the active
// gcloud configuration's core/project.
func projectOf(d *deps, g globalOptions) (string, error) {
	if g.Project != "" {
		if err := gce.CheckProject(g.Project); err != nil {
			return "", usagef("%v: pass a project ID, as gcloud takes it (lowercase letters, digits and '-': my-project, example.com:my-project)", err)
		}
		return g.Project, nil
	}
	p, err := d.gcloud("core", "project")
	if err != nil {
		return "", err
	}
	if p != "" {
		if err := gce.CheckProject(p); err != nil {
			return "", usagef("gcloud's core/project: %v: set a project ID, as gcloud takes it (lowercase letters, digits and '-': my-project, example.com:my-project)", err)
		}
		return p, nil
	}
	return "", usagef("no project: pass --project, set CLOUDSDK_CORE_PROJECT, or run 'gcloud config set project PROJECT'")
}
