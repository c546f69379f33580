package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// DefaultIAMCredentialsEndpoint is where generateAccessToken lives;
// Options.IAMCredentials (gcloud's api_endpoint_overrides/iamcredentials,
// universe domain, mTLS host) replaces it.
const DefaultIAMCredentialsEndpoint = "https://iamcredentials.googleapis.com/"

// ImpersonationError is IAM Credentials refusing to mint a token for the
// service account: the caller lacks roles/iam.serviceAccountTokenCreator,
// or the account does not exist.
type ImpersonationError struct {
	Caller, Target string
	Code           int    // HTTP status
	Message        string // Google's error message
}

func (e *ImpersonationError) Error() string {
	msg := fmt.Sprintf("impersonate %s as %s: %d %s", e.Target, e.Caller, e.Code, e.Message)
	if e.Code == http.StatusForbidden {
		msg += fmt.Sprintf(" %s needs roles/iam.serviceAccountTokenCreator on %s.", e.Caller, e.Target)
	}
	return msg
}

// impersonate wraps base: its tokens buy tokens for the account chain
// names. As gcloud reads it, chain is comma-separated and its last account
// is the target, the ones before it the delegates in order.
func impersonate(o Options, base *Source, chain, origin string) *Source {
	accounts := strings.Split(chain, ",")
	for i := range accounts {
		accounts[i] = strings.TrimSpace(accounts[i])
	}
	target, delegates := accounts[len(accounts)-1], accounts[:len(accounts)-1]
	endpoint := o.IAMCredentials
	if endpoint == "" {
		endpoint = DefaultIAMCredentialsEndpoint
	}
	if !strings.HasSuffix(endpoint, "/") {
		endpoint += "/"
	}
	s := &Source{
		Principal: target,
		Kind:      fmt.Sprintf("impersonation (%s) with the credentials of %s from %s", origin, base.Principal, base.Kind),
		id:        chain + "\x00" + endpoint + "\x00" + base.key(),
		Cleartext: base.Cleartext, // the base's secret still goes there
	}
	s.fetch = func(ctx context.Context) (*oauth2.Token, error) {
		for attempt := 0; ; attempt++ {
			btok, err := base.TokenContext(ctx)
			if err != nil {
				return nil, err
			}
			tok, err := generateAccessToken(ctx, o.HTTP, endpoint, btok, target, delegates)
			if e, ok := err.(*ImpersonationError); ok {
				e.Caller = base.Principal
				if e.Code == http.StatusUnauthorized && attempt == 0 {
					base.Invalidate(btok) // a stale base token; once more with a fresh one
					continue
				}
			}
			return tok, err
		}
	}
	return s
}

// generateAccessToken calls IAM Credentials' method of that name.
func generateAccessToken(ctx context.Context, client *http.Client, endpoint string, base *oauth2.Token, target string, delegates []string) (*oauth2.Token, error) {
	body := struct {
		Delegates []string `json:"delegates,omitempty"`
		Scope     []string `json:"scope"`
		Lifetime  string   `json:"lifetime"`
	}{Scope: []string{Scope}, Lifetime: "3600s"}
	for _, d := range delegates {
		body.Delegates = append(body.Delegates, "projects/-/serviceAccounts/"+d)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	u := endpoint + "v1/projects/-/serviceAccounts/" + target + ":generateAccessToken"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	base.SetAuthHeader(req)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var g struct {
			Error struct{ Message string } `json:"error"`
		}
		msg := strings.TrimSpace(string(reply))
		if json.Unmarshal(reply, &g) == nil && g.Error.Message != "" {
			msg = g.Error.Message
		}
		return nil, &ImpersonationError{Target: target, Code: resp.StatusCode, Message: msg}
	}
	var ok struct {
		AccessToken string    `json:"accessToken"`
		ExpireTime  time.Time `json:"expireTime"`
	}
	if err := json.Unmarshal(reply, &ok); err != nil || ok.AccessToken == "" {
		return nil, fmt.Errorf("impersonate %s: unexpected reply from %s", target, u)
	}
	return &oauth2.Token{AccessToken: ok.AccessToken, TokenType: "Bearer", Expiry: ok.ExpireTime}, nil
}
