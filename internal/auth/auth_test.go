//go:build unix

package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/emutest"
)

// fixture is an emulator with an ADC service account, a user and a
// gcloud directory, and the environment that points at them.
type fixture struct {
	srv      *emulator.Server
	base     string
	dir      string // gcloud's configuration directory
	env      map[string]string
	saFile   string // service-account key file
	userFile string // authorized_user file
}

const (
	saEmail   = "adc@p1.iam.gserviceaccount.com"
	userEmail = "ann@example.com"
	target    = "deployer@p1.iam.gserviceaccount.com"
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv, base := emutest.Serve(t, emulator.Config{Project: "p1"})
	f := &fixture{srv: srv, base: base, dir: t.TempDir()}
	p1 := emulator.Grant{Projects: []string{"p1"}}
	sa, err := srv.AddServiceAccount(emulator.Account{Email: saEmail, Grant: p1}, base)
	if err != nil {
		t.Fatal(err)
	}
	user, err := srv.AddUser(emulator.Account{Email: userEmail, Grant: p1}, base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddServiceAccount(emulator.Account{Email: target, Grant: p1, TokenCreators: []string{saEmail}}, base); err != nil {
		t.Fatal(err)
	}
	f.saFile = f.write(t, "sa.json", string(sa))
	f.userFile = f.write(t, "user.json", string(user))
	f.env = map[string]string{"CLOUDSDK_CONFIG": f.dir, "HOME": t.TempDir()}
	return f
}

func (f *fixture) write(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) lookup(k string) (string, bool) { v, ok := f.env[k]; return v, ok }

func (f *fixture) source(t *testing.T, o Options) *Source {
	t.Helper()
	o.Env = f.lookup
	if o.IAMCredentials == "" {
		o.IAMCredentials = f.base + "/"
	}
	if o.CacheDir == "" {
		o.CacheDir = filepath.Join(f.dir, "cache")
	}
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// TestOrder: each source is chosen when those before it are absent, and its
// tokens work, as the principal it names.
func TestOrder(t *testing.T) {
	f := newFixture(t)
	bare := "bare-token"
	f.srv.AddGrant(bare, emulator.Grant{Principal: "someone", Projects: []string{"p1"}})
	tokenFile := f.write(t, "token", bare+"\n")
	user, _ := os.ReadFile(f.userFile)
	sa, _ := os.ReadFile(f.saFile)
	f.write(t, "legacy_credentials/"+userEmail+"/adc.json", string(user))
	cases := []struct {
		name          string
		opts          Options
		env           map[string]string
		config        string // configurations/config_default
		wantKind      string
		wantPrincipal string
	}{
		{"token file", Options{TokenFile: tokenFile, TokenFileOrigin: "--access-token-file"},
			map[string]string{"CLOUDSDK_AUTH_ACCESS_TOKEN": "x", "GOOGLE_APPLICATION_CREDENTIALS": f.saFile}, "[core]\naccount = " + userEmail + "\n",
			"access token file " + tokenFile + " (--access-token-file)", "unknown (a bare access token)"},
		{"CLOUDSDK_AUTH_ACCESS_TOKEN", Options{}, map[string]string{"CLOUDSDK_AUTH_ACCESS_TOKEN": bare}, "[auth]\naccess_token_file = /nonexistent\n",
			"CLOUDSDK_AUTH_ACCESS_TOKEN", "unknown (a bare access token)"},
		{"auth/access_token_file", Options{}, nil, "[auth]\naccess_token_file = " + tokenFile + "\n[core]\naccount = " + userEmail + "\n",
			"access token file " + tokenFile + ` (auth/access_token_file (gcloud configuration "default"))`, "unknown (a bare access token)"},
		{"auth/credential_file_override", Options{}, nil, "[auth]\ncredential_file_override = " + f.saFile + "\n[core]\naccount = " + userEmail + "\n",
			`auth/credential_file_override (gcloud configuration "default")`, saEmail},
		{"gcloud login", Options{}, map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": f.saFile}, "[core]\naccount = " + userEmail + "\n",
			"gcloud login (" + filepath.Join(f.dir, "legacy_credentials", userEmail, "adc.json") + ")", userEmail},
		{"account without stored credentials falls to ADC", Options{}, map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": f.saFile}, "[core]\naccount = bob@example.com\n",
			"Application Default Credentials (" + f.saFile + ")", saEmail},
		{"GOOGLE_APPLICATION_CREDENTIALS", Options{}, map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": f.userFile}, "",
			"Application Default Credentials (" + f.userFile + ")", "a user (the file does not say who)"},
		{"well-known file", Options{}, nil, "",
			"Application Default Credentials (" + filepath.Join(f.dir, "application_default_credentials.json") + ")", saEmail},
	}
	f.write(t, "application_default_credentials.json", string(sa))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				f.env[k] = v
			}
			defer func() {
				for k := range tc.env {
					delete(f.env, k)
				}
			}()
			f.write(t, "configurations/config_default", tc.config)
			s := f.source(t, tc.opts)
			if s.Kind != tc.wantKind || s.Principal != tc.wantPrincipal {
				t.Errorf("source %q as %q, want %q as %q", s.Kind, s.Principal, tc.wantKind, tc.wantPrincipal)
			}
			tok, err := s.Token()
			if err != nil {
				t.Fatal(err)
			}
			wantOnCompute(t, f, tok)
		})
	}
}

// wantOnCompute checks that the Compute API takes tok.
func wantOnCompute(t *testing.T, f *fixture, tok *oauth2.Token) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.base+"/compute/v1/projects/p1", nil)
	tok.SetAuthHeader(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("Compute API with the token: %s", resp.Status)
	}
}

// TestDiskCache: a second process (a new Source) reuses the cached token
// without a token grant; the file is 0600; Invalidate drops it.
func TestDiskCache(t *testing.T) {
	f := newFixture(t)
	f.env["GOOGLE_APPLICATION_CREDENTIALS"] = f.userFile
	first, err := f.source(t, Options{}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if g := f.srv.Stats().TokenGrants; g != 1 {
		t.Fatalf("token grants %d, want 1", g)
	}
	files, _ := filepath.Glob(filepath.Join(f.dir, "cache", "*.json"))
	if len(files) != 1 {
		t.Fatalf("cache files %v, want 1", files)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file mode %v, %v; want 0600", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(files[0]); !strings.Contains(string(b), first.AccessToken) {
		t.Fatal("the cache file does not hold the token")
	}
	s := f.source(t, Options{})
	again, err := s.Token()
	if err != nil || again.AccessToken != first.AccessToken {
		t.Fatalf("second source: %v, %v; want the cached token", again, err)
	}
	if g := f.srv.Stats().TokenGrants; g != 1 {
		t.Errorf("token grants %d after a warm start, want still 1", g)
	}
	s.Invalidate(again)
	if fileExists(files[0]) {
		t.Error("Invalidate left the cache file")
	}
	fresh, err := s.Token()
	if err != nil || fresh.AccessToken == first.AccessToken {
		t.Fatalf("after Invalidate: %v, %v; want a new token", fresh, err)
	}
	if g := f.srv.Stats().TokenGrants; g != 2 {
		t.Errorf("token grants %d, want 2", g)
	}
	// Another principal's source does not see this one's token.
	f.env["GOOGLE_APPLICATION_CREDENTIALS"] = f.saFile
	other, err := f.source(t, Options{}).Token()
	if err != nil || other.AccessToken == fresh.AccessToken {
		t.Errorf("another principal got %v, %v", other, err)
	}
}

// TestTokenFileErrors: a token file that cannot be read or is empty is
// reported when the source is made, before any call wants a token, naming
// the file and the setting that names it.
func TestTokenFileErrors(t *testing.T) {
	f := newFixture(t)
	empty := f.write(t, "empty", " \n")
	missing := filepath.Join(f.dir, "missing")
	cases := []struct {
		name   string
		opts   Options
		config string
		want   string
	}{
		{"missing", Options{TokenFile: missing, TokenFileOrigin: "--access-token-file"}, "",
			"cannot read the access token file " + missing + " (set by --access-token-file): no such file or directory"},
		{"a directory", Options{TokenFile: f.dir, TokenFileOrigin: "GKESSH_ACCESS_TOKEN_FILE"}, "",
			"cannot read the access token file " + f.dir + " (set by GKESSH_ACCESS_TOKEN_FILE): is a directory"},
		{"empty", Options{TokenFile: empty, TokenFileOrigin: "--access-token-file"}, "",
			"the access token file " + empty + " (set by --access-token-file) is empty"},
		{"gcloud's property", Options{}, "[auth]\naccess_token_file = " + missing + "\n",
			"cannot read the access token file " + missing + ` (set by auth/access_token_file (gcloud configuration "default")): no such file or directory`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.write(t, "configurations/config_default", tc.config)
			o := tc.opts
			o.Env, o.CacheDir = f.lookup, filepath.Join(f.dir, "cache")
			_, err := New(context.Background(), o)
			var tf *TokenFileError
			if !errors.As(err, &tf) || err.Error() != tc.want {
				t.Errorf("New: %v, want a *TokenFileError saying %q", err, tc.want)
			}
		})
	}
}

// TestFileReread: a token file is read again after a refusal, not before.
func TestFileReread(t *testing.T) {
	f := newFixture(t)
	path := f.write(t, "token", "one")
	s := f.source(t, Options{TokenFile: path})
	tok, _ := s.Token()
	f.write(t, "token", "two")
	if again, _ := s.Token(); again.AccessToken != "one" {
		t.Errorf("read the file again before a refusal: %q", again.AccessToken)
	}
	s.Invalidate(tok)
	if again, _ := s.Token(); again.AccessToken != "two" {
		t.Errorf("after a refusal: %q, want the rotated token", again.AccessToken)
	}
}

func TestFresh(t *testing.T) {
	now := time.Now()
	cases := []struct {
		life, age time.Duration
		want      bool
	}{
		{time.Hour, 0, true},
		{time.Hour, 54 * time.Minute, true},
		{time.Hour, 56 * time.Minute, false}, // within 5 minutes of expiry
		{3 * time.Second, time.Second, true},
		{3 * time.Second, 2 * time.Second, false}, // past half a short life
	}
	for _, tc := range cases {
		got := now.Add(-tc.age)
		tok := &oauth2.Token{AccessToken: "x", Expiry: got.Add(tc.life)}
		if fresh(tok, got, now) != tc.want {
			t.Errorf("life %v age %v: fresh %v, want %v", tc.life, tc.age, !tc.want, tc.want)
		}
	}
	if !fresh(&oauth2.Token{AccessToken: "x"}, now, now) {
		t.Error("a token without expiry is fresh until refused")
	}
}

// TestImpersonation: the token speaks for the target; a refusal is an
// *ImpersonationError; the warm start caches the impersonated token.
func TestImpersonation(t *testing.T) {
	f := newFixture(t)
	f.env["GOOGLE_APPLICATION_CREDENTIALS"] = f.saFile
	s := f.source(t, Options{Impersonate: target})
	if s.Principal != target || !strings.Contains(s.Kind, saEmail) {
		t.Errorf("impersonating source %q as %q", s.Kind, s.Principal)
	}
	tok, err := s.Token()
	if err != nil {
		t.Fatal(err)
	}
	if g := f.srv.Stats().TokenGrants; g != 2 { // the base token, then the target's
		t.Errorf("token grants %d, want 2", g)
	}
	if again, err := f.source(t, Options{Impersonate: target}).Token(); err != nil || again.AccessToken != tok.AccessToken {
		t.Errorf("warm start: %v, %v; want the cached token", again, err)
	}
	// gcloud's property, through its variable, chooses it too.
	f.env["CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT"] = target
	if s := f.source(t, Options{}); s.Principal != target || !strings.Contains(s.Kind, "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT") {
		t.Errorf("from the variable: %q as %q", s.Kind, s.Principal)
	}
	delete(f.env, "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT")

	f.env["GOOGLE_APPLICATION_CREDENTIALS"] = f.userFile // not a token creator
	_, err = f.source(t, Options{Impersonate: target}).Token()
	var ie *ImpersonationError
	if !errors.As(err, &ie) || ie.Code != 403 || ie.Target != target || !strings.Contains(ie.Message, "iam.serviceAccounts.getAccessToken") {
		t.Errorf("refused impersonation: %v, want an ImpersonationError 403", err)
	}
}

// TestTokenHost: gcloud's auth/token_host replaces the file's token_uri.
func TestTokenHost(t *testing.T) {
	f := newFixture(t)
	var m map[string]any
	b, _ := os.ReadFile(f.userFile)
	json.Unmarshal(b, &m)
	delete(m, "token_uri") // gcloud strips it from a user's adc.json
	b, _ = json.Marshal(m)
	f.write(t, "legacy_credentials/"+userEmail+"/adc.json", string(b))
	f.write(t, "configurations/config_default", "[core]\naccount = "+userEmail+"\n[auth]\ntoken_host = "+f.base+"/token\n")
	if _, err := f.source(t, Options{}).Token(); err != nil {
		t.Fatalf("with auth/token_host: %v", err)
	}
}

// TestCleartextEndpoint: a source whose lasting secret (a user's refresh
// token and client secret, a service account's signed assertion) goes to a
// plain http:// token endpoint on another machine names it, from
// auth/token_host or the file's own token_uri, impersonation included, so
// the caller can warn; https and loopback (an emulator) are not named.
func TestCleartextEndpoint(t *testing.T) {
	f := newFixture(t)
	f.write(t, "legacy_credentials/"+userEmail+"/adc.json", string(mustRead(t, f.userFile)))
	for _, tt := range []struct {
		tokenHost, want string
	}{
		{"http://10.1.2.3/token", "http://10.1.2.3/token"},
		{"http://oauth.corp.example:8080/token", "http://oauth.corp.example:8080/token"},
		{"https://oauth2.googleapis.com/token", ""},
		{"http://127.0.0.1:18620/token", ""},
		{"http://localhost:18620/token", ""},
		{"http://[::1]:18620/token", ""},
	} {
		f.write(t, "configurations/config_default", "[core]\naccount = "+userEmail+"\n[auth]\ntoken_host = "+tt.tokenHost+"\n")
		if got := f.source(t, Options{}).Cleartext; got != tt.want {
			t.Errorf("auth/token_host %s: Cleartext %q, want %q", tt.tokenHost, got, tt.want)
		}
		if got := f.source(t, Options{Impersonate: target}).Cleartext; got != tt.want {
			t.Errorf("auth/token_host %s, impersonating: Cleartext %q, want %q", tt.tokenHost, got, tt.want)
		}
	}
	// A service-account file of its own naming a plain endpoint.
	var m map[string]any
	json.Unmarshal(mustRead(t, f.saFile), &m)
	m["token_uri"] = "http://203.0.113.9/token"
	b, _ := json.Marshal(m)
	f.write(t, "configurations/config_default", "[core]\n")
	f.env["GOOGLE_APPLICATION_CREDENTIALS"] = f.write(t, "plain.json", string(b))
	if got := f.source(t, Options{}).Cleartext; got != "http://203.0.113.9/token" {
		t.Errorf("token_uri http://203.0.113.9/token: Cleartext %q", got)
	}
}

// TestColdStartTogether: sources starting at once (processes, in life)
// with an empty cache make one token grant between them.
func TestColdStartTogether(t *testing.T) {
	f := newFixture(t)
	f.env["GOOGLE_APPLICATION_CREDENTIALS"] = f.userFile
	f.srv.SetTokenLatency(50 * time.Millisecond) // long enough for all to miss the cache
	const n = 8
	sources := make([]*Source, n)
	for i := range sources {
		sources[i] = f.source(t, Options{})
	}
	errs := make(chan error, n)
	for _, s := range sources {
		go func() { _, err := s.Token(); errs <- err }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if g := f.srv.Stats().TokenGrants; g != 1 {
		t.Errorf("%d token grants for %d sources starting together, want 1", g, n)
	}
}

// TestUserTokenHost: under certificate-based access user credentials go
// to the mTLS token host (Options.UserTokenHost), before auth/token_host;
// service accounts keep their own.
func TestUserTokenHost(t *testing.T) {
	f := newFixture(t)
	f.write(t, "configurations/config_default", "[core]\naccount = "+userEmail+"\n[auth]\ntoken_host = http://127.0.0.1:1/token\n")
	f.write(t, "legacy_credentials/"+userEmail+"/adc.json", string(mustRead(t, f.userFile)))
	if _, err := f.source(t, Options{UserTokenHost: f.base + "/token"}).Token(); err != nil {
		t.Fatalf("user credentials with UserTokenHost: %v", err)
	}
	if _, err := f.source(t, Options{}).Token(); err == nil {
		t.Fatal("user credentials without UserTokenHost went somewhere other than auth/token_host")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUniverse: credentials from a universe other than the configuration's
// are refused with gcloud's reasoning; a service account in another
// universe signs its own token (a JWT naming it), with no token request.
func TestUniverse(t *testing.T) {
	f := newFixture(t)
	var sa map[string]any
	json.Unmarshal(mustRead(t, f.saFile), &sa)
	sa["universe_domain"] = "apis-tpc.goog"
	b, _ := json.Marshal(sa)
	tpc := f.write(t, "tpc.json", string(b))

	f.env["GOOGLE_APPLICATION_CREDENTIALS"] = tpc
	_, err := New(context.Background(), Options{Env: f.lookup, CacheDir: "-"})
	want := `Your credentials are from "apis-tpc.goog", but your [core/universe_domain] property is set to "googleapis.com". ` +
		`Update your active account to an account from "googleapis.com" or update the [core/universe_domain] property to "apis-tpc.goog"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a TPC key in Google's universe: err = %v", err)
	}
	f.env["GOOGLE_APPLICATION_CREDENTIALS"] = f.saFile
	if _, err := New(context.Background(), Options{Env: f.lookup, CacheDir: "-", Universe: "apis-tpc.goog"}); err == nil || !strings.Contains(err.Error(), `Your credentials are from "googleapis.com"`) {
		t.Errorf("a Google key in a TPC universe: err = %v", err)
	}

	f.env["GOOGLE_APPLICATION_CREDENTIALS"] = tpc
	grants := f.srv.Stats().TokenGrants
	tok, err := f.source(t, Options{Universe: "apis-tpc.goog"}).Token()
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", tok.AccessToken)
	}
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if !strings.Contains(string(claims), `"iss":"`+saEmail+`"`) || !strings.Contains(string(claims), "cloud-platform") {
		t.Errorf("self-signed JWT claims %s", claims)
	}
	if g := f.srv.Stats().TokenGrants; g != grants {
		t.Errorf("%d token grants for a self-signed JWT, want none", g-grants)
	}
}

// TestTokenContext: a caller's cancelled ctx ends a fetch the token
// endpoint stalls, with ctx's error, for user credentials and for
// impersonation (whose base token is what stalls).
func TestTokenContext(t *testing.T) {
	f := newFixture(t)
	asked := make(chan struct{}, 4)
	stalled := make(chan struct{})
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-stalled:
		}
	}))
	defer stall.Close()
	defer close(stalled)
	f.write(t, "legacy_credentials/"+userEmail+"/adc.json", string(mustRead(t, f.userFile)))
	f.write(t, "configurations/config_default", "[core]\naccount = "+userEmail+"\n[auth]\ntoken_host = "+stall.URL+"/token\n")
	for _, o := range []Options{{}, {Impersonate: target}} {
		s := f.source(t, o)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := s.TokenContext(ctx)
			done <- err
		}()
		select {
		case <-asked:
		case <-time.After(2 * fetchTimeout):
			t.Fatalf("%s: the token endpoint was never asked", s.Kind)
		}
		cancel()
		// Generous: the fetch would end by itself after fetchTimeout, with
		// another error.
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: err = %v, want context.Canceled", s.Kind, err)
			}
		case <-time.After(2 * fetchTimeout):
			t.Fatalf("%s: still fetching %v after ctx was cancelled", s.Kind, 2*fetchTimeout)
		}
	}
}
