//go:build unix

package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
)

// TestGcloudHelper: a login gcloud keeps only in credentials.db is asked of
// gcloud itself, once: the warm start takes the token from the disk cache.
// (unix only: the fake gcloud is a shell script.)
func TestGcloudHelper(t *testing.T) {
	f := newFixture(t)
	f.srv.AddGrant("helper-token", emulator.Grant{Principal: userEmail, Projects: []string{"p1"}})
	bin := t.TempDir()
	calls := filepath.Join(bin, "calls")
	exp := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05Z")
	script := "#!/bin/sh\necho \"$@\" >> " + calls + "\n" +
		`echo '{"configuration":{},"credential":{"access_token":"helper-token","token_expiry":"` + exp + `"}}'` + "\n"
	if err := os.WriteFile(filepath.Join(bin, "gcloud"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	f.write(t, "credentials.db", "")
	f.write(t, "configurations/config_default", "[core]\naccount = "+userEmail+"\n")
	s := f.source(t, Options{})
	if s.Principal != userEmail || !strings.Contains(s.Kind, "config-helper") {
		t.Errorf("source %q as %q", s.Kind, s.Principal)
	}
	for range 2 {
		tok, err := f.source(t, Options{}).Token()
		if err != nil {
			t.Fatal(err)
		}
		wantOnCompute(t, f, tok)
	}
	b, _ := os.ReadFile(calls)
	if got := strings.TrimSpace(string(b)); got != "config config-helper --format=json --account="+userEmail {
		t.Errorf("gcloud ran with %q, want one config-helper call for the account", got)
	}
}

func TestParseConfigHelper(t *testing.T) {
	cases := []struct {
		in      string
		want    string
		expires bool
		err     bool
	}{
		{`{"credential":{"access_token":"t","token_expiry":"2030-01-02T03:04:05Z"}}`, "t", true, false},
		{`{"credential":{"access_token":"t","token_expiry":""}}`, "t", false, false},
		{`{"credential":{"access_token":"t","token_expiry":"soon"}}`, "", false, true},
		{`{"credential":{}}`, "", false, true},
		{`not json`, "", false, true},
	}
	for _, tc := range cases {
		tok, err := parseConfigHelper([]byte(tc.in))
		if (err != nil) != tc.err || (err == nil && (tok.AccessToken != tc.want || tok.Expiry.IsZero() == tc.expires)) {
			t.Errorf("parseConfigHelper(%s) = %+v, %v", tc.in, tok, err)
		}
	}
}

// FuzzParseConfigHelper: never panics; a token it returns is not empty.
func FuzzParseConfigHelper(f *testing.F) {
	f.Add([]byte(`{"credential":{"access_token":"t","token_expiry":"2030-01-02T03:04:05Z"}}`))
	f.Add([]byte(`{"credential":{"access_token":"t","token_expiry":null}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if tok, err := parseConfigHelper(b); err == nil && tok.AccessToken == "" {
			t.Error("an empty token without an error")
		}
	})
}
