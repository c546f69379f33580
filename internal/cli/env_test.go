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
	srv, url := emutest.Serve(t, cfg)
	home := t.TempDir()
	tokenFile := filepath.Join(home, "token")
	if err := os.WriteFile(tokenFile, []byte(srv.Token()), 0o600); err != nil {
		t.Fatal(err)
	}
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
	return &testEnv{t: t, srv: srv, url: url, home: home}
}

// run runs gkessh in-process and returns its stdout, stderr and exit status.
func (e *testEnv) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), append([]string{"gkessh"}, args...), Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	return out.String(), errb.String(), code
}
