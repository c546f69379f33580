//go:build unix

package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/auth"
	"github.com/gkessh/gkessh/internal/gcloud"
	"github.com/gkessh/gkessh/internal/transport"
	"github.com/gkessh/gkessh/knownhosts"
)

// unset in a test's environment removes the variable: set but empty is not
// the same to every reader.
const unset = "<unset>"

// TestDoctorCredentials: doctor names the principal, the source and the
// token's expiry for each kind of source, and never the token.
func TestDoctorCredentials(t *testing.T) {
	e := newTestEnv(t, emulator.Config{})
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT", "")
	t.Setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS", e.url+"/")
	grant := emulator.Grant{Projects: []string{e.srv.ProjectName()}}
	robot, target := "robot@demo-project.iam.gserviceaccount.com", "deployer@demo-project.iam.gserviceaccount.com"
	key, err := e.srv.AddServiceAccount(emulator.Account{Email: robot, Grant: grant}, e.url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.AddServiceAccount(emulator.Account{Email: target, Grant: grant, TokenCreators: []string{robot}}, e.url); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(e.home, "key.json")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := os.Getenv("GKESSH_ACCESS_TOKEN_FILE")
	wrong := filepath.Join(e.home, "wrong-token")
	if err := os.WriteFile(wrong, []byte("not-a-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		// gcloud's store.py: the raw token, then auth/access_token_file,
		// whose variable CLOUDSDK_AUTH_ACCESS_TOKEN_FILE is (not a flag).
		{"raw token before the token file property", map[string]string{"GKESSH_ACCESS_TOKEN_FILE": unset, "CLOUDSDK_AUTH_ACCESS_TOKEN": e.srv.Token(), "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": wrong}, nil,
			"ok    credentials of unknown (a bare access token), from CLOUDSDK_AUTH_ACCESS_TOKEN; its expiry is unknown"},
		{"token file property", map[string]string{"GKESSH_ACCESS_TOKEN_FILE": unset, "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": tokenFile}, nil,
			"ok    credentials of unknown (a bare access token), from access token file " + tokenFile + " (auth/access_token_file (CLOUDSDK_AUTH_ACCESS_TOKEN_FILE)); its expiry is unknown"},
		{"token file", nil, nil, "ok    credentials of unknown (a bare access token), from access token file " + tokenFile + " (GKESSH_ACCESS_TOKEN_FILE); its expiry is unknown"},
		{"ADC file", map[string]string{"GKESSH_ACCESS_TOKEN_FILE": "", "GOOGLE_APPLICATION_CREDENTIALS": keyFile}, nil,
			"ok    credentials of " + robot + ", from Application Default Credentials (" + keyFile + "); token expires in "},
		{"impersonation", map[string]string{"GKESSH_ACCESS_TOKEN_FILE": "", "GOOGLE_APPLICATION_CREDENTIALS": keyFile}, []string{"--impersonate-service-account", target},
			"ok    credentials of " + target + ", from impersonation (--impersonate-service-account) with the credentials of " + robot + " from Application Default Credentials (" + keyFile + "); token expires in "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				if v == unset {
					t.Setenv(k, "") // restored after
					os.Unsetenv(k)
					continue
				}
				t.Setenv(k, v)
			}
			out, errOut, code := e.run(append([]string{"doctor"}, tc.args...)...)
			if code != 0 || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, want 0 and %q:\n%s%s", code, tc.want, out, errOut)
			}
			if strings.Contains(out+errOut, "ya29.") || strings.Contains(out+errOut, e.srv.Token()) {
				t.Fatal("doctor printed a token")
			}
		})
	}
}

// TestOneStateDir: the zone cache, the token cache and the proxy's stamps
// all live in deps' one state directory: a test (or a caller) that moves
// it moves all three.
func TestOneStateDir(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 1})
	robot := "robot@demo-project.iam.gserviceaccount.com"
	key, err := e.srv.AddServiceAccount(emulator.Account{Email: robot, Grant: emulator.Grant{Projects: []string{e.srv.ProjectName()}}}, e.url)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(e.home, "key.json")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", keyFile)
	d := e.deps(Stdio{Out: io.Discard, Err: io.Discard})
	state := filepath.Join(e.home, "state")
	d.stateDir = func() (string, error) { return state, nil }
	o := sshOptions{globalOptions: e.options(), Node: e.srv.Nodes()[0], Port: 22, PropagationTimeout: time.Minute,
		Strict: knownhosts.StrictAcceptNew, Command: []string{"true"}}
	o.TokenFile = "" // the service account's key: a token worth caching
	if err := runSSH(context.Background(), o, d, Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}); err != nil {
		t.Fatal(err)
	}
	stamps := openStamps(d, e.srv.ProjectName(), io.Discard)
	stamps.put(o.Node, stamp{User: "u", Key: "k", Until: time.Now().Add(time.Hour)}, time.Now())
	for _, pattern := range []string{"zones-*.json", "staged-*.json", "tokens/*.json"} {
		if m, _ := filepath.Glob(filepath.Join(state, pattern)); len(m) == 0 {
			t.Errorf("no %s in the state directory %s", pattern, state)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(e.home, ".cache", "gkessh", "*", "*")); len(m) > 0 {
		t.Errorf("state outside the state directory: %v", m)
	}
}

// TestCleartextTokenWarning: a credentials source whose secret goes to a
// plain http:// endpoint on another machine (auth.Source.Cleartext) is
// warned about once a run, naming the endpoint and the source, before any
// token is fetched; others are not.
func TestCleartextTokenWarning(t *testing.T) {
	t.Parallel()
	for _, cleartext := range []string{"http://10.1.2.3/token", ""} {
		e := newEmuEnv(t, emulator.Config{Nodes: 1})
		var errb bytes.Buffer
		d := e.deps(Stdio{Err: &errb})
		d.newTokenSource = func(context.Context, globalOptions, gcloud.LookupEnv, string, func(string, ...any), *gcloud.Config, *transport.Transport) (*auth.Source, error) {
			return &auth.Source{Kind: "gcloud login (adc.json)", Cleartext: cleartext}, nil
		}
		for range 2 {
			if _, err := d.tokenSource(context.Background(), e.options()); err != nil {
				t.Fatal(err)
			}
		}
		want := map[bool]int{true: 1, false: 0}[cleartext != ""]
		if n := strings.Count(errb.String(), "warning: the token endpoint "+cleartext+" is plain http://"); n != want {
			t.Errorf("Cleartext %q: warned %d times, want %d:\n%s", cleartext, n, want, errb.String())
		}
	}
}
