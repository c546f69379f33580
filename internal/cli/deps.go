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

// deps is what the commands take from outside their flags: credentials, the
// Compute client, the IAP relay, where files live, the logger and the
// clock. Main builds one per process with newDeps (gh's Factory is the
// model) and hands it to every runX; tests build theirs over an emulator
// and a temporary home and call runX directly. Options stay plain data:
// whatever reads a file or the network is here, or in the run function.
type deps struct {
	// newTokenSource finds the credentials (authSource, in creds.go): the
	// one place that decides how. tokenSource calls it once per process.
	newTokenSource func(ctx context.Context, g globalOptions, cacheDir string, logf func(string, ...any), cfg *gcloud.Config, tr *transport.Transport) (*auth.Source, error)
	// newTransport builds the transport of every connection to Google
	// (transportFor, in transport.go); transport calls it once.
	newTransport func(cfg *gcloud.Config, g globalOptions, logf func(string, ...any)) (*transport.Transport, error)
	// gcloudConfig is the active gcloud configuration, read once.
	gcloudConfig func() (*gcloud.Config, error)
	// newCompute builds a Compute API client.
	newCompute func(ctx context.Context, project, endpoint string, ts oauth2.TokenSource) (*gce.Client, error)
	// gcloud reads a property of the active gcloud configuration as gcloud
	// does (its CLOUDSDK_SECTION_NAME variable first): core/project,
	// core/account (whose OS Login profile holds the key, and which names
	// the remote user when the local login name will not do),
	// auth/impersonate_service_account.
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
	// dryRun is set by a --dry-run: nothing goes to disk, not even the
	// zone cache or a pinned host key.
	dryRun bool

	tokenOnce sync.Once
	tokens    *auth.Source
	tokenErr  error
	trOnce    sync.Once
	tr        *transport.Transport
	trErr     error
}

// newDeps returns the real world: gcloud's and the user's files, Google's
// endpoints unless flags say otherwise, the system clock.
func newDeps(stdio Stdio) *deps {
	d := &deps{
		newTokenSource: authSource,
		newTransport:   transportFor,
		newCompute:     gce.New,
		gcloudConfig:   sync.OnceValues(func() (*gcloud.Config, error) { return gcloud.Load(nil) }),
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
	d.gcloud = func(section, name string) (string, error) {
		cfg, err := d.gcloudConfig()
		if err != nil {
			return "", err
		}
		return cfg.Get(section, name), nil
	}
	return d
}

// tokenSource is the process's one access-token source, shared by the
// Compute client and the IAP dialer, so a login mints one token, not one
// per client. It caches tokens itself (in memory and on disk) and drops one
// a server refuses.
func (d *deps) tokenSource(ctx context.Context, g globalOptions) (*auth.Source, error) {
	d.tokenOnce.Do(func() {
		logf := d.logger(g.Verbose)
		// A dry run keeps tokens in memory only: it writes nothing to disk.
		cacheDir := ""
		if dir, err := d.stateDir(); err != nil {
			logf("auth: no disk token cache: %v", err)
		} else if !d.dryRun {
			cacheDir = filepath.Join(dir, "tokens")
		}
		cfg, err := d.gcloudConfig()
		if err != nil {
			d.tokenErr = err
			return
		}
		tr, err := d.transport(g)
		if err != nil {
			d.tokenErr = err
			return
		}
		d.tokens, d.tokenErr = d.newTokenSource(ctx, g, cacheDir, logf, cfg, tr)
	})
	return d.tokens, d.tokenErr
}

// transport is the process's one transport: the proxy, CA file, client
// certificate, endpoints and headers of every connection to Google.
func (d *deps) transport(g globalOptions) (*transport.Transport, error) {
	d.trOnce.Do(func() {
		cfg, err := d.gcloudConfig()
		if err != nil {
			d.trErr = err
			return
		}
		d.tr, d.trErr = d.newTransport(cfg, g, d.logger(g.Verbose))
	})
	return d.tr, d.trErr
}

// close stops what the process started for its connections (an
// enterprise certificate signer).
func (d *deps) close() {
	if d.tr != nil {
		d.tr.Close()
	}
}

// logger logs to d.log when on (--verbose), and discards otherwise.
func (d *deps) logger(on bool) func(string, ...any) {
	return func(format string, args ...any) {
		if on {
			fmt.Fprintf(d.log, "gkessh: "+format+"\n", args...)
		}
	}
}

// project returns --project (or CLOUDSDK_CORE_PROJECT), else the active
// gcloud configuration's core/project.
func (d *deps) project(g globalOptions) (string, error) {
	if g.Project != "" {
		return g.Project, nil
	}
	p, err := d.gcloud("core", "project")
	if err != nil {
		return "", err
	}
	if p != "" {
		return p, nil
	}
	return "", usagef("no project: pass --project, set CLOUDSDK_CORE_PROJECT, or run 'gcloud config set project PROJECT'")
}

// compute returns a Compute API client for the resolved project.
func (d *deps) compute(ctx context.Context, g globalOptions) (*gce.Client, error) {
	project, err := d.project(g)
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

// iapDialer returns the IAP tunnel dialer: the configured relay, the
// process's token source, a User-Agent naming gkessh, and reconnects logged
// with --verbose.
func (d *deps) iapDialer(ctx context.Context, g globalOptions) (*tunnel.Dialer, error) {
	ts, err := d.tokenSource(ctx, g)
	if err != nil {
		return nil, err
	}
	tr, err := d.transport(g)
	if err != nil {
		return nil, err
	}
	dl := &tunnel.Dialer{Endpoint: tr.Relay().URL, TokenSource: ts, UserAgent: "gkessh/" + Version, WS: tr.WSDialer(), Header: tr.RelayHeader()}
	if g.Verbose {
		dl.Logf = d.logger(true)
	}
	return dl, nil
}

// zoneCache is the on-disk cache of instance zones.
func (d *deps) zoneCache() (*gce.Cache, error) {
	dir, err := d.stateDir()
	if err != nil {
		return nil, err
	}
	return &gce.Cache{Dir: dir, Now: d.now, ReadOnly: d.dryRun}, nil
}
