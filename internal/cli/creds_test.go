//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

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
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"token file", nil, nil, "ok    credentials of unknown (a bare access token), from access token file " + tokenFile + " (GKESSH_ACCESS_TOKEN_FILE); its expiry is unknown"},
		{"ADC file", map[string]string{"GKESSH_ACCESS_TOKEN_FILE": "", "GOOGLE_APPLICATION_CREDENTIALS": keyFile}, nil,
			"ok    credentials of " + robot + ", from Application Default Credentials (" + keyFile + "); token expires in "},
		{"impersonation", map[string]string{"GKESSH_ACCESS_TOKEN_FILE": "", "GOOGLE_APPLICATION_CREDENTIALS": keyFile}, []string{"--impersonate-service-account", target},
			"ok    credentials of " + target + ", from impersonation (--impersonate-service-account) with the credentials of " + robot + " from Application Default Credentials (" + keyFile + "); token expires in "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
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
