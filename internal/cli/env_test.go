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
)

// testEnv is an in-process emulator plus a fresh HOME, with the environment
// pointing gkessh at both, the way `eval $(gce-emulator)` does for a user.
type testEnv struct {
	t    *testing.T
	srv  *emulator.Server
	url  string // http://127.0.0.1:PORT
	home string
}

func newTestEnv(t *testing.T, cfg emulator.Config) *testEnv {
	t.Helper()
	e := newEmuEnv(t, cfg)
	home, url, srv, tokenFile := e.home, e.url, e.srv, filepath.Join(e.home, "token")
	for k, v := range map[string]string{
		"HOME":                            home,
		"XDG_CACHE_HOME":                  filepath.Join(home, ".cache"),
		"XDG_CONFIG_HOME":                 filepath.Join(home, ".config"),
		"SSH_AUTH_SOCK":                   "",
		"GKESSH_COMPUTE_ENDPOINT":         url + "/compute/v1/",
		"GKESSH_IAP_ENDPOINT":             "ws" + strings.TrimPrefix(url, "http"),
		"GKESSH_ACCESS_TOKEN_FILE":        tokenFile,
		"CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": "",
		"CLOUDSDK_CORE_PROJECT":           srv.ProjectName(),
	} {
		t.Setenv(k, v)
	}
	return e
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
// and no gcloud configuration: nothing read from the environment.
func (e *testEnv) deps(stdio Stdio) *deps {
	d := newDeps(stdio)
	in := func(rel ...string) func() (string, error) {
		p := filepath.Join(append([]string{e.home}, rel...)...)
		return func() (string, error) { return p, nil }
	}
	d.gcloudProject = func() (string, error) { return "", nil }
	d.gcloudAccount = func() (string, error) { return "", nil }
	d.stateDir = in(".cache", "gkessh")
	d.keyPath = in(".ssh", "google_compute_engine")
	d.knownHosts = in(".ssh", "google_compute_known_hosts")
	d.sshConfig = in(".ssh", "config")
	d.localUser = func() (string, error) { return "tester", nil }
	return d
}

// run runs gkessh in-process and returns its stdout, stderr and exit status.
func (e *testEnv) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), append([]string{"gkessh"}, args...), Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	return out.String(), errb.String(), code
}
