//go:build unix

package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/emutest"
	"github.com/gkessh/gkessh/internal/gcloud"
)

// testEnv is an in-process emulator plus a fresh HOME, with the environment
// pointing gkessh at both, the way `eval $(gce-emulator)` does for a user.
type testEnv struct {
	t    *testing.T
	srv  *emulator.Server
	url  string // http://127.0.0.1:PORT
	home string
	// bin, when set, is the gkessh binary that run starts in e's
	// environment, instead of calling Main in this process.
	bin string
}

func newTestEnv(t *testing.T, cfg emulator.Config) *testEnv {
	t.Helper()
	e := newEmuEnv(t, cfg)
	for k, v := range e.environ() {
		t.Setenv(k, v)
	}
	return e
}

// newParallelEnv is newTestEnv for a parallel test: run starts the gkessh
// binary with the environment, so nothing in this process changes (Main
// is not safe for concurrent use: see Main). It calls t.Parallel.
func newParallelEnv(t *testing.T, cfg emulator.Config) *testEnv {
	t.Helper()
	t.Parallel()
	return newProcessEnv(t, cfg)
}

// newProcessEnv is newParallelEnv without the t.Parallel, for a parallel
// test's second environment.
func newProcessEnv(t *testing.T, cfg emulator.Config) *testEnv {
	t.Helper()
	e := newEmuEnv(t, cfg)
	e.bin = gkesshBinary(t)
	return e
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
	env := os.Environ()
	for k, v := range e.environ() {
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

// deps are newDeps with every file under e.home, the local user "tester"
// and an empty gcloud configuration whose endpoints are the emulator's:
// nothing read from the environment.
func (e *testEnv) deps(stdio Stdio) *deps {
	d := newDeps(stdio)
	env := e.environ()
	env["CLOUDSDK_CONFIG"] = filepath.Join(e.home, ".config", "gcloud")
	d.gcloudConfig = func() (*gcloud.Config, error) {
		return gcloud.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	}
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
	return d
}

// run runs gkessh and returns its stdout, stderr and exit status.
func (e *testEnv) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	return e.runIn(nil, args...)
}

// runIn is run with stdin: in-process through Main, or the binary in a
// process of its own (newParallelEnv).
func (e *testEnv) runIn(stdin []byte, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	var out, errb bytes.Buffer
	if e.bin == "" {
		code = Main(context.Background(), append([]string{"gkessh"}, args...), Stdio{In: bytes.NewReader(stdin), Out: &out, Err: &errb})
		return out.String(), errb.String(), code
	}
	cmd := exec.Command(e.bin, args...)
	cmd.Env = e.env()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		e.t.Fatalf("gkessh %q: %v", args, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}
