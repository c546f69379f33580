package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// credentialsFile is credentialsJSON for a file; kind "" names it as an
// Application Default Credentials file.
func credentialsFile(ctx context.Context, o Options, path, kind, principal string) (*Source, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: credentials file: %w", err)
	}
	if kind == "" {
		kind = "Application Default Credentials (" + path + ")"
	}
	return credentialsJSON(ctx, o, b, kind, principal)
}

// credentialsJSON is a source for a credentials file in ADC format
// (service_account, authorized_user, external_account, ...). principal ""
// is read from the file where it says. gcloud's auth/token_host, when set,
// replaces the file's token endpoint, as in gcloud, and Options.UserTokenHost
// that of user credentials. A file from a universe other than
// Options.Universe is refused, as gcloud refuses it; a service account
// outside Google's universe signs its own tokens (gcloud's self-signed JWT),
// as no OAuth server there mints them.
func credentialsJSON(ctx context.Context, o Options, b []byte, kind, principal string) (*Source, error) {
	var f struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		Account     string `json:"account"`
		Audience    string `json:"audience"`
		ImpURL      string `json:"service_account_impersonation_url"`
		Universe    string `json:"universe_domain"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("auth: %s: not a credentials file: %w", kind, err)
	}
	universe := cmp.Or(o.Universe, defaultUniverse)
	if from := cmp.Or(f.Universe, defaultUniverse); from != universe {
		return nil, fmt.Errorf("auth: %s: Your credentials are from %q, but your [core/universe_domain] property is set to %q. "+
			"Update your active account to an account from %q or update the [core/universe_domain] property to %q", kind, from, universe, universe, from)
	}
	host := o.Gcloud.Get("auth", "token_host")
	if f.Type == "authorized_user" && o.UserTokenHost != "" {
		host = o.UserTokenHost
	}
	if host != "" {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err == nil {
			m["token_uri"] = host
			b, _ = json.Marshal(m)
		}
	}
	if principal == "" {
		principal = principalOf(f.Type, f.ClientEmail, f.Account, f.Audience, f.ImpURL)
	}
	sum := sha256.Sum256(b)
	// The file is the user's own (their login, their variable), so its
	// declared type is taken; x/oauth2 checks the content matches it.
	typ := google.CredentialsType(f.Type)
	// Parse now, so a broken file fails here and not at the first Token.
	params := google.CredentialsParams{Scopes: []string{Scope}}
	if _, err := google.CredentialsFromJSONWithTypeAndParams(ctx, b, typ, params); err != nil {
		return nil, fmt.Errorf("auth: %s: %w", kind, err)
	}
	client := o.HTTP
	if typ == google.ServiceAccount && universe != defaultUniverse {
		ts, err := google.JWTAccessTokenSourceWithScope(b, Scope)
		if err != nil {
			return nil, fmt.Errorf("auth: %s: %w", kind, err)
		}
		return &Source{Principal: principal, Kind: kind, id: hex.EncodeToString(sum[:]), fetch: func(context.Context) (*oauth2.Token, error) {
			return ts.Token()
		}}, nil
	}
	return &Source{Principal: principal, Kind: kind, Cleartext: cleartextEndpoint(b), id: hex.EncodeToString(sum[:]), fetch: func(ctx context.Context) (*oauth2.Token, error) {
		// A new credentials value each time: its own token cache would
		// hand back a token the server just refused.
		ctx = context.WithValue(ctx, oauth2.HTTPClient, client)
		creds, err := google.CredentialsFromJSONWithTypeAndParams(ctx, b, typ, params)
		if err != nil {
			return nil, err
		}
		return creds.TokenSource.Token()
	}}, nil
}

// cleartextEndpoint is the token endpoint of credentials file b (token_uri,
// or an external account's token_url) when it is plain http:// to another
// machine than this one, else "".
func cleartextEndpoint(b []byte) string {
	var f struct {
		TokenURI string `json:"token_uri"`
		TokenURL string `json:"token_url"`
	}
	json.Unmarshal(b, &f)
	for _, s := range []string{f.TokenURI, f.TokenURL} {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "http" {
			continue
		}
		if ip := net.ParseIP(u.Hostname()); u.Hostname() == "localhost" || ip != nil && ip.IsLoopback() {
			continue
		}
		return s
	}
	return ""
}

// defaultUniverse is Google's own universe domain.
const defaultUniverse = "googleapis.com"

// principalOf names whom a credentials file speaks for, without asking.
func principalOf(typ, email, account, audience, impURL string) string {
	switch {
	case email != "":
		return email
	case account != "":
		return account
	case impURL != "":
		// .../serviceAccounts/SA:generateAccessToken
		sa := impURL[strings.LastIndex(impURL, "/")+1:]
		sa, _, _ = strings.Cut(sa, ":")
		return sa
	case typ == "external_account":
		return "workload identity (" + audience + ")"
	case typ == "authorized_user":
		return "a user (the file does not say who)"
	}
	return "unknown (" + typ + ")"
}
