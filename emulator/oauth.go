//go:build unix

package emulator

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The emulator's OAuth side, at the paths Google serves them on:
//
//	POST /token    oauth2.googleapis.com/token: the JWT-bearer grant
//	               (service-account key files) and the refresh-token
//	               grant (authorized_user files)
//	POST /v1/projects/-/serviceAccounts/SA:generateAccessToken
//	               iamcredentials.googleapis.com: impersonation
//
// Every token either mints is a Grant whose Principal is the account it
// speaks for, so the Compute API and the relay judge it like any other.

// DefaultTokenLifetime is how long minted tokens live unless
// SetTokenLifetime says otherwise: Google's hour.
const DefaultTokenLifetime = time.Hour

// Account is a service account or user that can obtain tokens.
type Account struct {
	// Email names the account; it becomes its tokens' Principal.
	Email string `json:"email"`
	// Grant is what the account's tokens may do; its Principal and
	// Expiry are ignored.
	Grant
	// TokenCreators are the principals that may impersonate this
	// service account (roles/iam.serviceAccountTokenCreator on it).
	TokenCreators []string `json:"tokenCreators,omitempty"`
}

// oauthState is the OAuth side's state; its zero value is ready.
type oauthState struct {
	mu       sync.Mutex
	lifetime time.Duration // 0: DefaultTokenLifetime
	latency  time.Duration // added to each token endpoint answer
	accounts map[string]*oauthAccount
	refresh  map[string]string // refresh token → user e-mail
	idKey    *rsa.PrivateKey   // signs ID tokens; made on first use
	idKeyID  string
	grants   int64 // tokens minted
	by       map[string]map[string]int64
}

type oauthAccount struct {
	Account
	key   *rsa.PublicKey // service accounts only
	keyID string
}

func (o *oauthState) account(email string) *oauthAccount {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.accounts[email]
}

// SetTokenLifetime sets how long tokens minted from now on live (0: an hour).
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.oauth.mu.Lock()
	s.oauth.lifetime = d
	s.oauth.mu.Unlock()
}

// SetTokenLatency makes the token endpoint and generateAccessToken wait d
// before answering, as a distant OAuth server would.
func (s *Server) SetTokenLatency(d time.Duration) {
	s.oauth.mu.Lock()
	s.oauth.latency = d
	s.oauth.mu.Unlock()
}

// AddServiceAccount registers a service account and returns a key file for
// it, in the format of the IAM console's JSON keys, whose token_uri is
// baseURL's token endpoint (baseURL like http://127.0.0.1:PORT).
func (s *Server) AddServiceAccount(a Account, baseURL string) ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("emulator: service account key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("emulator: service account key: %w", err)
	}
	keyID := randomHex(20)
	s.addAccount(&oauthAccount{Account: a, key: &key.PublicKey, keyID: keyID})
	_, project, _ := strings.Cut(strings.TrimSuffix(a.Email, ".iam.gserviceaccount.com"), "@")
	escaped := strings.ReplaceAll(a.Email, "@", "%40")
	return marshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  project,
		"private_key_id":              keyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                a.Email,
		"client_id":                   serviceAccountUniqueID(a.Email),
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   baseURL + "/token",
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"client_x509_cert_url":        "https://www.googleapis.com/robot/v1/metadata/x509/" + escaped,
		"universe_domain":             "googleapis.com",
	})
}

// AddUser registers a user and returns an authorized_user credentials file
// for them, as `gcloud auth application-default login` writes, whose
// token_uri is baseURL's token endpoint.
func (s *Server) AddUser(a Account, baseURL string) ([]byte, error) {
	refresh := "1//emu-" + randomHex(24)
	s.addAccount(&oauthAccount{Account: a})
	s.oauth.mu.Lock()
	if s.oauth.refresh == nil {
		s.oauth.refresh = map[string]string{}
	}
	s.oauth.refresh[refresh] = a.Email
	s.oauth.mu.Unlock()
	return marshalIndent(map[string]string{
		"account":          "",
		"client_id":        adcClientID,
		"client_secret":    oauthClients[adcClientID],
		"quota_project_id": "",
		"refresh_token":    refresh,
		"token_uri":        baseURL + "/token",
		"type":             "authorized_user",
		"universe_domain":  "googleapis.com",
	})
}

// oauthClients are the OAuth clients the refresh-token grant accepts, with
// their secrets: gcloud's own (gcloud auth login) and the one its
// application-default login uses. Both are public, in gcloud's source.
var oauthClients = map[string]string{
	"32555940559.apps.googleusercontent.com":                                   "ZmssLNjJy2998hD4CTg2ejr2",
	"764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com": "d-FL95Q19q7MQmFpd7hHD0Ty",
}

const adcClientID = "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com"

func (s *Server) addAccount(a *oauthAccount) {
	s.oauth.mu.Lock()
	defer s.oauth.mu.Unlock()
	if s.oauth.accounts == nil {
		s.oauth.accounts = map[string]*oauthAccount{}
	}
	s.oauth.accounts[a.Email] = a
}

// serviceAccountUniqueID is the numeric unique id of a service account,
// also its OAuth client id: 21 digits, as Google's are. The emulator
// derives it from the e-mail, so an account keeps it from run to run.
func serviceAccountUniqueID(email string) string {
	sum := sha256.Sum256([]byte(email))
	n := new(big.Int).SetBytes(sum[:16])
	n.Mod(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(20), nil))
	return fmt.Sprintf("1%020s", n.String())
}

// isServiceAccount tells a service account's e-mail (…@P.iam.gserviceaccount.com,
// …-compute@developer.gserviceaccount.com, …) from a user's.
func isServiceAccount(email string) bool {
	return strings.HasSuffix(email, ".gserviceaccount.com")
}

// mint makes a token for a, as a Grant, and counts it. lifetime 0 means
// the configured lifetime, which also caps any other.
func (s *Server) mint(a *oauthAccount, lifetime time.Duration) (string, time.Time) {
	s.oauth.mu.Lock()
	max := s.oauth.lifetime
	if max == 0 {
		max = DefaultTokenLifetime
	}
	s.oauth.grants++
	s.oauth.mu.Unlock()
	if lifetime == 0 || lifetime > max {
		lifetime = max
	}
	tok := "ya29.emu-" + randomHex(24)
	g := a.Grant
	g.Principal = a.Email
	g.Expiry = time.Now().Add(lifetime)
	s.AddGrant(tok, g)
	return tok, g.Expiry
}

// wait sleeps the configured token latency, or until the client leaves.
func (s *Server) wait(r *http.Request) {
	s.oauth.mu.Lock()
	d := s.oauth.latency
	s.oauth.mu.Unlock()
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// oauthError writes the token endpoint's error body (RFC 6749 5.2), as
// Google words it.
func oauthError(w http.ResponseWriter, code int, kind, description string) {
	writeToken(w, code, map[string]string{"error": kind, "error_description": description})
}

// writeToken writes a token endpoint answer as Google's does, unlike its
// JSON APIs' answers: indented whatever prettyPrint says, no newline at
// the end, charset in lower case.
func writeToken(w http.ResponseWriter, code int, v any) {
	b, _ := json.MarshalIndent(v, "", "  ") // maps of strings and numbers
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b)
}

const googleTokenURL = "https://oauth2.googleapis.com/token"

const jwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// serveToken is oauth2.googleapis.com/token.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.wait(r)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Invalid request body")
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case jwtBearer:
		a, audience, desc := s.verifyAssertion(r, r.PostForm.Get("assertion"))
		if a == nil {
			s.cfg.Logf("oauth: jwt-bearer: %s", desc)
			oauthError(w, http.StatusBadRequest, "invalid_grant", desc)
			return
		}
		if audience != "" {
			// An assertion with target_audience asks for an ID token,
			// which is all Google's answer holds.
			idToken, err := s.idToken(a, audience)
			if err != nil {
				oauthError(w, http.StatusInternalServerError, "internal_failure", err.Error())
				return
			}
			writeToken(w, http.StatusOK, map[string]string{"id_token": idToken})
			return
		}
		tok, exp := s.mint(a, 0)
		writeToken(w, http.StatusOK, map[string]any{"access_token": tok, "expires_in": expiresIn(exp), "token_type": "Bearer"})
	case "refresh_token":
		// The client authenticates in the body or with HTTP Basic (RFC 6749 2.3.1).
		id, secret, basic := r.BasicAuth()
		if basic {
			id, _ = url.QueryUnescape(id)
			secret, _ = url.QueryUnescape(secret)
		} else {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if want, ok := oauthClients[id]; !ok || secret != want {
			oauthError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
			return
		}
		s.oauth.mu.Lock()
		email := s.oauth.refresh[r.PostForm.Get("refresh_token")]
		s.oauth.mu.Unlock()
		a := s.oauth.account(email)
		if a == nil {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "Bad Request")
			return
		}
		tok, exp := s.mint(a, 0)
		writeToken(w, http.StatusOK, map[string]any{"access_token": tok, "expires_in": expiresIn(exp),
			"scope":      "https://www.googleapis.com/auth/cloud-platform openid https://www.googleapis.com/auth/userinfo.email",
			"token_type": "Bearer"})
	case "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: grant_type")
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
	}
}

// expiresIn is the token's remaining lifetime in whole seconds, as Google
// counts it (3599 for a fresh hour).
func expiresIn(exp time.Time) int64 {
	return int64(time.Until(exp) / time.Second)
}

// verifyAssertion checks a service account's signed JWT (RFC 7523) as
// Google does: RS256 by a key the account holds, audience the token
// endpoint, issued within the last hour and living at most an hour, and
// asking for scopes or, with target_audience, for an ID token. It returns
// the account and the ID token's audience ("" for an access token), or
// Google's error description.
func (s *Server) verifyAssertion(r *http.Request, assertion string) (*oauthAccount, string, string) {
	a, claims, desc := s.checkAssertion(r, assertion)
	if a == nil {
		return nil, "", desc
	}
	if claims.TargetAudience == "" && claims.Scope == "" {
		return nil, "", "Invalid JWT: No valid scopes found"
	}
	return a, claims.TargetAudience, ""
}

// assertionClaims are the claims of a JWT-bearer assertion Google reads.
type assertionClaims struct {
	Iss, Aud, Scope string
	TargetAudience  string `json:"target_audience"`
	Iat, Exp        int64
}

func (s *Server) checkAssertion(r *http.Request, assertion string) (*oauthAccount, assertionClaims, string) {
	var claims assertionClaims
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return nil, claims, "Invalid JWT: token must have three segments"
	}
	var header struct{ Alg, Kid string }
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &header) != nil || json.Unmarshal(cb, &claims) != nil {
		return nil, claims, "Invalid JWT: unable to decode"
	}
	a := s.oauth.account(claims.Iss)
	if a == nil || a.key == nil {
		return nil, claims, "Invalid grant: account not found"
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if header.Alg != "RS256" || (header.Kid != "" && header.Kid != a.keyID) ||
		rsa.VerifyPKCS1v15(a.key, crypto.SHA256, digest[:], sig) != nil {
		return nil, claims, "Invalid JWT Signature."
	}
	// Python's google-auth always names Google's endpoint, whatever the
	// key file's token_uri; x/oauth2 names the token_uri.
	if aud := requestBase(r) + r.URL.Path; claims.Aud != aud && claims.Aud != googleTokenURL {
		return nil, claims, "Invalid JWT: Failed audience check. The right audience is " + googleTokenURL
	}
	now := time.Now().Unix()
	const skew = 60
	if claims.Exp-claims.Iat > 3600 || claims.Iat > now+skew || claims.Exp < now-skew {
		return nil, claims, "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	}
	return a, claims, ""
}

// idToken signs an OpenID Connect ID token for a service account with the
// emulator's own key, with the claims Google's have: issuer
// accounts.google.com, the audience asked for, the account's unique id as
// subject and authorized party, its e-mail, an hour's life.
func (s *Server) idToken(a *oauthAccount, audience string) (string, error) {
	s.oauth.mu.Lock()
	if s.oauth.idKey == nil {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			s.oauth.mu.Unlock()
			return "", fmt.Errorf("emulator: ID token key: %w", err)
		}
		s.oauth.idKey, s.oauth.idKeyID = key, randomHex(20)
	}
	key, kid := s.oauth.idKey, s.oauth.idKeyID
	s.oauth.mu.Unlock()
	now := time.Now()
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": kid, "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{
		"aud": audience, "azp": serviceAccountUniqueID(a.Email), "sub": serviceAccountUniqueID(a.Email),
		"email": a.Email, "email_verified": true, "iss": "https://accounts.google.com",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	signed := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("emulator: sign ID token: %w", err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// serveGenerateAccessToken is IAM Credentials'
// projects.serviceAccounts.generateAccessToken: the caller must hold
// iam.serviceAccounts.getAccessToken on the first delegate, each delegate
// on the next, and the last on the target.
func (s *Server) serveGenerateAccessToken(w http.ResponseWriter, r *http.Request) {
	s.wait(r)
	name, ok := strings.CutSuffix(r.PathValue("sa"), ":generateAccessToken")
	if !ok {
		s.serveTestIAM(w, r) // IAM's methods on service accounts share the path (iam.go)
		return
	}
	if r.PathValue("project") != "-" {
		writeStatus(w, http.StatusNotFound, "NOT_FOUND", "Method not found.")
		return
	}
	caller := s.bearerGrant(r)
	if caller == nil {
		writeStatus(w, http.StatusUnauthorized, "UNAUTHENTICATED", msgUnauthenticated)
		return
	}
	var req struct {
		Delegates []string `json:"delegates"`
		Scope     []string `json:"scope"`
		Lifetime  string   `json:"lifetime"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("Invalid JSON payload received. %v", err))
		return
	}
	if len(req.Scope) == 0 {
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Scope required.")
		return
	}
	var lifetime time.Duration
	if req.Lifetime != "" {
		secs, ok := strings.CutSuffix(req.Lifetime, "s")
		d, err := time.ParseDuration(secs + "s")
		if !ok || err != nil || d <= 0 || d > time.Hour {
			writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "The lifetime of the token must be in (0s, 3600s].")
			return
		}
		lifetime = d
	}
	chain := append(slices.Clone(req.Delegates), name)
	who := caller.Principal
	var target *oauthAccount
	for _, hop := range chain {
		email := strings.TrimPrefix(hop, "projects/-/serviceAccounts/")
		target = s.oauth.account(email)
		if target == nil || target.key == nil || !slices.Contains(target.TokenCreators, who) {
			s.cfg.Logf("iamcredentials: %s may not impersonate %s", who, email)
			writeStatus(w, http.StatusForbidden, "PERMISSION_DENIED",
				"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).")
			return
		}
		who = email
	}
	tok, exp := s.mint(target, lifetime)
	writeJSON(w, http.StatusOK, map[string]string{"accessToken": tok, "expireTime": exp.UTC().Format(time.RFC3339)})
}

// oauthSettings are the token endpoint's settings as the control API
// shows them: Go durations.
type oauthSettings struct {
	Lifetime string `json:"lifetime"` // of minted tokens, like "1h0m0s"
	Latency  string `json:"latency"`  // added to each answer, like "200ms"
}

func (s *Server) ctlOAuth(*http.Request) (any, *apiError) {
	s.oauth.mu.Lock()
	defer s.oauth.mu.Unlock()
	lifetime := s.oauth.lifetime
	if lifetime == 0 {
		lifetime = DefaultTokenLifetime
	}
	return oauthSettings{lifetime.String(), s.oauth.latency.String()}, nil
}

// ctlSetOAuth changes the settings given; absent ones stay.
func (s *Server) ctlSetOAuth(r *http.Request) (any, *apiError) {
	var req oauthSettings
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		v   string
		set func(time.Duration)
	}{{req.Lifetime, s.SetTokenLifetime}, {req.Latency, s.SetTokenLatency}} {
		if f.v == "" {
			continue
		}
		d, err := time.ParseDuration(f.v)
		if err != nil || d < 0 {
			return nil, invalid("%q is not a duration like 3s or 200ms", f.v)
		}
		f.set(d)
	}
	return s.ctlOAuth(r)
}

// ctlAddAccount registers an account and answers with its credentials
// file: {"type":"service_account" or "authorized_user", "email", "projects",
// "permissions", "tokenCreators"}.
func (s *Server) ctlAddAccount(r *http.Request) (any, *apiError) {
	var req struct {
		Type string `json:"type"`
		Account
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if !strings.Contains(req.Email, "@") {
		return nil, invalid("email %q is not an e-mail address", req.Email)
	}
	add := s.AddServiceAccount
	switch req.Type {
	case "service_account":
	case "authorized_user":
		add = s.AddUser
	default:
		return nil, invalid("type %q is not service_account or authorized_user", req.Type)
	}
	file, err := add(req.Account, requestBase(r))
	if err != nil {
		return nil, &apiError{http.StatusInternalServerError, "internalError", err.Error()}
	}
	return json.RawMessage(file), nil
}

// requestBase is the scheme and host r came to: https:// under
// Config.TLS, so that credentials files and JWT audiences name the URL
// clients actually use.
func requestBase(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// countBy records one event of kind for the principal of g ("" for none).
func (s *Server) countBy(kind string, g *grant) {
	p := ""
	if g != nil {
		p = g.Principal
	}
	s.oauth.mu.Lock()
	defer s.oauth.mu.Unlock()
	if s.oauth.by == nil {
		s.oauth.by = map[string]map[string]int64{}
	}
	if s.oauth.by[kind] == nil {
		s.oauth.by[kind] = map[string]int64{}
	}
	s.oauth.by[kind][p]++
}

// principalStats returns the tokens minted and copies of the per-principal
// counts.
func (s *Server) principalStats() (grants int64, writes, tunnels map[string]int64) {
	s.oauth.mu.Lock()
	defer s.oauth.mu.Unlock()
	cp := func(m map[string]int64) map[string]int64 {
		out := map[string]int64{}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return s.oauth.grants, cp(s.oauth.by["write"]), cp(s.oauth.by["tunnel"])
}

func (s *Server) resetPrincipalStats() {
	s.oauth.mu.Lock()
	s.oauth.grants = 0
	s.oauth.by = nil
	s.oauth.mu.Unlock()
}

func marshalIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
