// Package auth gives gkessh its one OAuth2 access token source, chosen in
// gcloud's order, optionally impersonating a service account, with tokens
// cached on disk so that a warm process asks no server for one.
//
// The order, first match wins:
//
//  1. an access token file (--access-token-file and its variables), then
//     CLOUDSDK_AUTH_ACCESS_TOKEN;
//  2. gcloud's properties auth/access_token_file and
//     auth/credential_file_override;
//  3. gcloud's own login: the credentials gcloud stores for core/account
//     (its adc.json; failing that, `gcloud config config-helper`);
//  4. Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS, the
//     well-known file, then the metadata server.
//
// Impersonation (--impersonate-service-account, CLOUDSDK_AUTH_
// IMPERSONATE_SERVICE_ACCOUNT, auth/impersonate_service_account) wraps
// whichever was chosen with IAM Credentials' generateAccessToken.
package auth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/gkessh/gkessh/internal/ctxtoken"
	"github.com/gkessh/gkessh/internal/gcloud"
)

// Scope is the OAuth scope gkessh asks for, as gcloud does for its APIs.
const Scope = "https://www.googleapis.com/auth/cloud-platform"

// Options choose and tune the source.
type Options struct {
	// TokenFile holds an access token (--access-token-file); Origin
	// says where the name came from, for messages.
	TokenFile, TokenFileOrigin string
	// Impersonate is the service account to impersonate: SA[,DELEGATE...];
	// ImpersonateOrigin says where it came from, for messages.
	Impersonate, ImpersonateOrigin string
	// Gcloud is the gcloud configuration; nil loads it.
	Gcloud *gcloud.Config
	// Env looks up variables; nil means os.LookupEnv.
	Env gcloud.LookupEnv
	// CacheDir holds cached tokens (gkessh's state directory's tokens/);
	// "" keeps them in memory only.
	CacheDir string
	// HTTP makes the token requests; nil means http.DefaultClient.
	HTTP *http.Client
	// IAMCredentials is IAM Credentials' base URL, ending in "/", for
	// impersonation; "" means DefaultIAMCredentialsEndpoint.
	IAMCredentials string
	// UserTokenHost, when set, is the token endpoint of user credentials
	// (gcloud's auth/mtls_token_host under certificate-based access).
	UserTokenHost string
	// Universe is the configuration's universe domain (core/universe_domain);
	// "" means googleapis.com. Credentials from another are refused.
	Universe string
	// Logf, when set, hears which source was chosen and each token fetch.
	Logf func(format string, args ...any)
}

// ErrNoCredentials means no source in the order has credentials.
var ErrNoCredentials = errors.New("no credentials")

// Source is an oauth2.TokenSource that caches in memory and on disk and can
// drop a token a server refused. It is safe for concurrent use.
type Source struct {
	// Principal is who the tokens speak for, as well as it is known
	// without asking a server: an e-mail address, or a description.
	Principal string
	// Kind names the source, such as "gcloud login" or
	// "Application Default Credentials file /path".
	Kind string
	// Cleartext, when set, is the plain http:// token endpoint on another
	// machine that the source sends its lasting secret to (a refresh
	// token and client secret, a signed key assertion, a subject token):
	// anyone on the way reads it. A loopback endpoint (an emulator) is not
	// named. The caller warns; gcloud sends it all the same.
	Cleartext string

	id string // what else tells this source's tokens apart (cache.go)
	// bare sources (a token file or variable) have no expiry to cache
	// by, and cost nothing to read again: memory only.
	bare  bool
	fetch func(ctx context.Context) (*oauth2.Token, error)
	cache *diskCache // nil: memory only
	logf  func(string, ...any)

	mu  sync.Mutex
	tok *oauth2.Token
	got time.Time // when tok was fetched, for its lifetime
}

// New chooses the source in gcloud's order. It reads local files only: no
// token is fetched until Token is called.
func New(ctx context.Context, o Options) (*Source, error) {
	if o.Env == nil {
		o.Env = os.LookupEnv
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	if o.Gcloud == nil {
		cfg, err := gcloud.Load(o.Env)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		o.Gcloud = cfg
	}
	cache := openCache(o.CacheDir)
	s, err := base(ctx, o)
	if err != nil {
		return nil, err
	}
	s.logf = o.Logf
	if !s.bare {
		s.cache = cache
	}
	imp := o.Impersonate
	origin := o.ImpersonateOrigin
	if imp == "" {
		imp = o.Gcloud.Get("auth", "impersonate_service_account")
		origin = o.Gcloud.Source("auth", "impersonate_service_account")
	}
	if imp != "" {
		s = impersonate(o, s, imp, origin)
		s.cache, s.logf = cache, o.Logf
	}
	o.Logf("auth: credentials of %s from %s", s.Principal, s.Kind)
	return s, nil
}

// base picks the first source in gcloud's order that has credentials.
func base(ctx context.Context, o Options) (*Source, error) {
	cfg := o.Gcloud
	if o.TokenFile != "" {
		return fileSource(ctx, o.TokenFile, o.TokenFileOrigin)
	}
	if tok, ok := o.Env("CLOUDSDK_AUTH_ACCESS_TOKEN"); ok && tok != "" {
		return staticSource(tok), nil
	}
	if f := cfg.Get("auth", "access_token_file"); f != "" {
		return fileSource(ctx, f, "auth/access_token_file ("+cfg.Source("auth", "access_token_file")+")")
	}
	if f := cfg.Get("auth", "credential_file_override"); f != "" {
		return credentialsFile(ctx, o, f, "auth/credential_file_override ("+cfg.Source("auth", "credential_file_override")+")", "")
	}
	if account := cfg.Account(); account != "" {
		b, err := cfg.StoredCredentials(account)
		if err == nil {
			return credentialsJSON(ctx, o, b, "gcloud login ("+cfg.CredentialsFile(account)+")", account)
		}
		if !errors.Is(err, gcloud.ErrNoStoredCredentials) {
			return nil, fmt.Errorf("auth: %w", err)
		}
		// A login kept only in gcloud's credential database: ask gcloud.
		if fileExists(filepath.Join(cfg.Dir, "credentials.db")) {
			if path, err := exec.LookPath("gcloud"); err == nil {
				return gcloudHelper(path, account), nil
			}
		}
		o.Logf("auth: %v; trying Application Default Credentials", err)
	}
	if f, ok := o.Env("GOOGLE_APPLICATION_CREDENTIALS"); ok && f != "" {
		return credentialsFile(ctx, o, f, "", "")
	}
	if f := cfg.ADCFile(); fileExists(f) {
		return credentialsFile(ctx, o, f, "", "")
	}
	return metadataSource(ctx, o)
}

var _ ctxtoken.Source = (*Source)(nil)

// Token is TokenContext with no context of the caller's: fetchTimeout
// alone bounds it.
func (s *Source) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext returns a token that is not near its expiry: from memory,
// else the disk cache, else fetched (and then cached). ctx, and
// fetchTimeout, bound the wait for another process's fetch and the fetch.
// A call made while another fetches waits for it, whatever its ctx.
func (s *Source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.tok != nil && fresh(s.tok, s.got, now) {
		return s.tok, nil
	}
	if tok, got, ok := s.cache.load(s.key()); ok && fresh(tok, got, now) {
		s.tok, s.got = tok, got
		return tok, nil
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	// Processes starting together (Ansible's forks) fetch one token: the
	// first takes the lock and fetches, the others then find it cached.
	if release, err := s.cache.lock(ctx, s.key()); err == nil {
		defer release()
		if tok, got, ok := s.cache.load(s.key()); ok && fresh(tok, got, now) {
			s.tok, s.got = tok, got
			return tok, nil
		}
	}
	tok, err := s.fetch(ctx)
	var tf *TokenFileError
	if errors.As(err, &tf) {
		return nil, err // it names the file and its setting
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Kind, err)
	}
	s.logf("auth: new token for %s from %s, expires %s", s.Principal, s.Kind, expiryText(tok.Expiry))
	s.tok, s.got = tok, now
	if !tok.Expiry.IsZero() {
		if err := s.cache.store(s.key(), tok, now); err != nil {
			s.logf("auth: cache the token: %v", err)
		}
	}
	return tok, nil
}

// fetchTimeout bounds one token request.
const fetchTimeout = 30 * time.Second

// Invalidate drops tok, which a server refused: the next Token fetches a
// new one (and reads a token file again). A token other than the current
// one (already replaced) is ignored.
func (s *Source) Invalidate(tok *oauth2.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil || tok == nil || s.tok.AccessToken != tok.AccessToken {
		return
	}
	s.logf("auth: a server refused the token of %s from %s; getting a new one", s.Principal, s.Kind)
	s.tok = nil
	s.cache.remove(s.key())
}

// Expiry is when the current token expires: zero when none has been
// fetched or its source does not say.
func (s *Source) Expiry() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil {
		return time.Time{}
	}
	return s.tok.Expiry
}

// fresh reports whether tok is worth using at now: until 5 minutes before
// its expiry, or half its lifetime for tokens shorter-lived than 10
// minutes (so they are reused at all). A token without expiry is fresh.
func fresh(tok *oauth2.Token, got, now time.Time) bool {
	if tok.Expiry.IsZero() {
		return true
	}
	margin := 5 * time.Minute
	if life := tok.Expiry.Sub(got); life < 2*margin {
		margin = life / 2
	}
	return now.Before(tok.Expiry.Add(-margin))
}

func expiryText(t time.Time) string {
	if t.IsZero() {
		return "when its issuer says"
	}
	return "in " + time.Until(t).Round(time.Second).String()
}

// fileSource reads an access token from path now, so that a file that
// is missing, unreadable or empty is reported before any call needs a
// token, and again after Invalidate: a refresh job that rotates the file
// is followed on the next refusal.
func fileSource(ctx context.Context, path, origin string) (*Source, error) {
	kind := "access token file " + path
	if origin != "" {
		kind += " (" + origin + ")"
	}
	s := &Source{Principal: "unknown (a bare access token)", Kind: kind, bare: true, fetch: func(context.Context) (*oauth2.Token, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, &TokenFileError{Path: path, Origin: origin, Err: err}
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return nil, &TokenFileError{Path: path, Origin: origin}
		}
		return &oauth2.Token{AccessToken: tok, TokenType: "Bearer"}, nil
	}}
	tok, err := s.fetch(ctx)
	if err != nil {
		return nil, err
	}
	s.tok, s.got = tok, time.Now()
	return s, nil
}

// TokenFileError is an access token file that cannot be read or holds no
// token.
type TokenFileError struct {
	Path   string
	Origin string // the setting that names it
	Err    error  // nil: the file is empty
}

func (e *TokenFileError) Error() string {
	what := "the access token file " + e.Path
	if e.Origin != "" {
		what += " (set by " + e.Origin + ")"
	}
	var pe *fs.PathError
	switch {
	case e.Err == nil:
		return what + " is empty"
	case errors.As(e.Err, &pe):
		return "cannot read " + what + ": " + pe.Err.Error()
	}
	return "cannot read " + what + ": " + e.Err.Error()
}

func (e *TokenFileError) Unwrap() error { return e.Err }

func staticSource(tok string) *Source {
	return &Source{Principal: "unknown (a bare access token)", Kind: "CLOUDSDK_AUTH_ACCESS_TOKEN", bare: true, fetch: func(context.Context) (*oauth2.Token, error) {
		return &oauth2.Token{AccessToken: tok, TokenType: "Bearer"}, nil
	}}
}

// metadataSource is the last resort: x/oauth2/google's search, which ends
// at the GCE metadata server.
func metadataSource(ctx context.Context, o Options) (*Source, error) {
	creds, err := google.FindDefaultCredentials(ctx, Scope)
	if err != nil {
		return nil, fmt.Errorf("auth: %w: run 'gcloud auth login' or 'gcloud auth application-default login' (%v)", ErrNoCredentials, err)
	}
	return &Source{Principal: "the VM's service account", Kind: "the GCE metadata server", fetch: func(context.Context) (*oauth2.Token, error) {
		return creds.TokenSource.Token()
	}}, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
