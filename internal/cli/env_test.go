//go:build unix

package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/emutest"
	"github.com/gkessh/gkessh/internal/gcloud"
	"github.com/gkessh/gkessh/internal/testio"
	"github.com/gkessh/gkessh/keys"
)

// testEnv is an in-process emulator plus a fresh HOME, with the environment
// pointing gkessh at both, the way `eval $(gce-emulator)` does for a user.
type testEnv struct {
	t    *testing.T
	srv  *emulator.Server
	url  string // http://127.0.0.1:PORT
	home string
	// own: run calls gkessh in this process with e's deps, which see
	// only e's environment, so tests may run side by side
	// (newParallelEnv); else Main, which sees the process's (newTestEnv).
	own bool
	// vars are variables set on top of environ (setenv).
	vars map[string]string
}

func newTestEnv(t *testing.T, cfg emulator.Config) *testEnv {
	t.Helper()
	e := newEmuEnv(t, cfg)
	for k, v := range e.environ() {
		t.Setenv(k, v)
	}
	return e
}

// newParallelEnv is newTestEnv for a parallel test: run calls gkessh in
// this process with deps that see e's environment only, so nothing in the
// process changes. It calls t.Parallel.
func newParallelEnv(t *testing.T, cfg emulator.Config) *testEnv {
	t.Helper()
	t.Parallel()
	return newOwnEnv(t, cfg)
}

// newOwnEnv is newParallelEnv without the t.Parallel, for a parallel
// test's second environment.
func newOwnEnv(t *testing.T, cfg emulator.Config) *testEnv {
	t.Helper()
	e := newEmuEnv(t, cfg)
	e.own = true
	return e
}

// setenv sets a variable in e's environment, for gkessh run in this
// process (newParallelEnv) or as a process (env).
func (e *testEnv) setenv(k, v string) {
	if e.vars == nil {
		e.vars = map[string]string{}
	}
	e.vars[k] = v
}

// lookupEnv looks k up in e's environment alone, with gcloud's
// configuration directory under e.home.
func (e *testEnv) lookupEnv(k string) (string, bool) {
	if v, ok := e.vars[k]; ok {
		return v, true
	}
	if k == "CLOUDSDK_CONFIG" {
		return filepath.Join(e.home, ".config", "gcloud"), true
	}
	v, ok := e.environ()[k]
	return v, ok
}

// environ is the environment that points gkessh at e's emulator and HOME:
// the emulator serves every API, each named by gcloud's variable.
func (e *testEnv) environ() map[string]string {
	return map[string]string{
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_OSLOGIN":              e.url + "/",
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER": e.url + "/",
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM":                  e.url + "/",
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_IAP":                  e.url + "/",
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS":       e.url + "/",
		"HOME":                            e.home,
		"XDG_CACHE_HOME":                  filepath.Join(e.home, ".cache"),
		"XDG_CONFIG_HOME":                 filepath.Join(e.home, ".config"),
		"SSH_AUTH_SOCK":                   "",
		"GKESSH_COMPUTE_ENDPOINT":         e.url + "/compute/v1/",
		"GKESSH_IAP_ENDPOINT":             "ws" + strings.TrimPrefix(e.url, "http"),
		"GKESSH_ACCESS_TOKEN_FILE":        filepath.Join(e.home, "token"),
		"CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": "",
		"CLOUDSDK_CORE_PROJECT":           e.srv.ProjectName(),
	}
}

// env is os.Environ with e.environ on top, for a process.
func (e *testEnv) env() []string {
	return append(os.Environ(), e.environList()...)
}

// environList is e.environ with e.vars over it, as KEY=VALUE.
func (e *testEnv) environList() []string {
	var env []string
	for k, v := range e.environ() {
		if _, set := e.vars[k]; !set {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range e.vars {
		env = append(env, k+"="+v)
	}
	return env
}

// newEmuEnv is an in-process emulator and a fresh home, without touching
// the environment: tests that call runX with e.deps() and e.options() can
// run in parallel.
func newEmuEnv(t *testing.T, cfg emulator.Config) *testEnv {
	t.Helper()
	srv, url := emutest.Serve(t, cfg)
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "token"), []byte(srv.Token()), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, srv: srv, url: url, home: home}
}

// options are global options pointing at the emulator with its own token.
func (e *testEnv) options() globalOptions {
	return globalOptions{
		Project:         e.srv.ProjectName(),
		TokenFile:       filepath.Join(e.home, "token"),
		ComputeEndpoint: e.url + "/compute/v1/",
		IAPEndpoint:     "ws" + strings.TrimPrefix(e.url, "http"),
	}
}

// deps are newDeps with every file under e.home, the local user "tester",
// cmd/gkessh built for ProxyCommand and an empty gcloud configuration whose endpoints are the emulator's:
// nothing read from the environment.
func (e *testEnv) deps(stdio Stdio) *deps {
	d := newDeps(stdio)
	d.env, d.environ = e.lookupEnv, e.environList
	d.gcloudConfig = func() (*gcloud.Config, error) { return gcloud.Load(e.lookupEnv) }
	in := func(rel ...string) func() (string, error) {
		p := filepath.Join(append([]string{e.home}, rel...)...)
		return func() (string, error) { return p, nil }
	}
	d.gcloud = func(string, string) (string, error) { return "", nil }
	d.stateDir = in(".cache", "gkessh")
	d.keyPath = in(".ssh", "google_compute_engine")
	d.knownHosts = in(".ssh", "google_compute_known_hosts")
	d.sshConfig = in(".ssh", "config")
	d.localUser = func() (string, error) { return "tester", nil }
	// Not this test binary, a go-build temporary that config-ssh refuses.
	d.executable = func() (string, error) { return gkesshBinary(e.t), nil }
	return d
}

// run runs gkessh and returns its stdout, stderr and exit status.
func (e *testEnv) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	return e.runIn(nil, args...)
}

// runIn is run with stdin, in this process: with e's deps (newParallelEnv),
// or through Main in the process's environment (newTestEnv).
func (e *testEnv) runIn(stdin []byte, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	// gkessh writes stderr from several goroutines (run's nodes), as it
	// may to a file: a buffer that takes that.
	var out, errb testio.Buffer
	argv, stdio := append([]string{"gkessh"}, args...), Stdio{In: bytes.NewReader(stdin), Out: &out, Err: &errb}
	if !e.own {
		// Main, but with cmd/gkessh for ProxyCommand: config-ssh refuses
		// this test binary, a go-build temporary.
		d := newDeps(stdio)
		d.executable = func() (string, error) { return gkesshBinary(e.t), nil }
		code = mainWith(context.Background(), argv, stdio, d)
		return out.String(), errb.String(), code
	}
	d := e.deps(stdio)
	// As the binary would: gcloud's properties from e's environment, the
	// process's user.
	d.gcloud = func(section, name string) (string, error) {
		cfg, err := d.gcloudConfig()
		if err != nil {
			return "", err
		}
		return cfg.Get(section, name), nil
	}
	d.localUser = keys.LocalUser
	code = mainWith(context.Background(), argv, stdio, d)
	return out.String(), errb.String(), code
}
