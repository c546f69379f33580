//go:build unix

package emulator

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	iamcredentials "google.golang.org/api/iamcredentials/v1"
	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"
)

const cloudPlatform = "https://www.googleapis.com/auth/cloud-platform"

// tokenFrom gets a token from a credentials file with Google's own client.
func tokenFrom(t *testing.T, file []byte) (*oauth2.Token, error) {
	t.Helper()
	var f struct{ Type google.CredentialsType }
	if err := json.Unmarshal(file, &f); err != nil {
		t.Fatalf("credentials file: %v", err)
	}
	creds, err := google.CredentialsFromJSONWithType(context.Background(), file, f.Type, cloudPlatform)
	if err != nil {
		t.Fatalf("credentials file: %v", err)
	}
	return creds.TokenSource.Token()
}

// TestTokenEndpoint: service-account key files (JWT-bearer grant) and
// authorized_user files (refresh-token grant) get tokens from the emulator
// through x/oauth2/google, and those tokens work on the Compute API as
// their account.
func TestTokenEndpoint(t *testing.T) {
	srv, hs := newTestServer(t, Config{Project: "p1"})
	sa := "robot@p1.iam.gserviceaccount.com"
	saFile, err := srv.AddServiceAccount(Account{Email: sa, Grant: Grant{Projects: []string{"p1"}}}, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	userFile, err := srv.AddUser(Account{Email: "ann@example.com", Grant: Grant{Projects: []string{"p1"}}}, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, principal string
		file            []byte
	}{{"service_account", sa, saFile}, {"authorized_user", "ann@example.com", userFile}} {
		t.Run(tc.name, func(t *testing.T) {
			srv.ResetStats()
			tok, err := tokenFrom(t, tc.file)
			if err != nil {
				t.Fatalf("token: %v", err)
			}
			if left := time.Until(tok.Expiry); left < 59*time.Minute || left > time.Hour {
				t.Errorf("token expires in %v, want about an hour", left)
			}
			svc := computeClient(t, hs, tok.AccessToken)
			p, err := svc.Projects.Get("p1").Do()
			if err != nil {
				t.Fatalf("compute with the minted token: %v", err)
			}
			md := p.CommonInstanceMetadata
			if _, err := svc.Projects.SetCommonInstanceMetadata("p1", &compute.Metadata{Fingerprint: md.Fingerprint}).Do(); err != nil {
				t.Fatal(err)
			}
			st := srv.Stats()
			if st.TokenGrants != 1 || st.MetadataWritesBy[tc.principal] != 1 {
				t.Errorf("stats %+v, want 1 token grant and 1 write by %s", st, tc.principal)
			}
		})
	}
}

// TestTokenEndpointRefuses: what Google refuses, with its error bodies.
func TestTokenEndpointRefuses(t *testing.T) {
	srv, hs := newTestServer(t, Config{Project: "p1"})
	sa := "robot@p1.iam.gserviceaccount.com"
	saFile, err := srv.AddServiceAccount(Account{Email: sa}, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	// A second key for the same e-mail replaces the first: the first no
	// longer verifies.
	saFile2, err := srv.AddServiceAccount(Account{Email: sa}, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := (&Server{cfg: Config{Logf: t.Logf}}).AddServiceAccount(Account{Email: "x@p1.iam.gserviceaccount.com"}, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	// The current key's id and e-mail, signed with another key.
	var forgedKey, strangerKey map[string]string
	json.Unmarshal(saFile2, &forgedKey)
	json.Unmarshal(stranger, &strangerKey)
	forgedKey["private_key"] = strangerKey["private_key"]
	forged, _ := json.Marshal(forgedKey)
	var user map[string]string
	userFile, _ := srv.AddUser(Account{Email: "ann@example.com"}, hs.URL)
	json.Unmarshal(userFile, &user)
	user["refresh_token"] = "1//revoked"
	revoked, _ := json.Marshal(user)
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"replaced key", saFile, "\"error\": \"invalid_grant\",\n  \"error_description\": \"Invalid JWT Signature.\"\n}"},
		{"forged signature", forged, "\"error\": \"invalid_grant\",\n  \"error_description\": \"Invalid JWT Signature.\"\n}"},
		{"unknown account", stranger, "\"error\": \"invalid_grant\",\n  \"error_description\": \"Invalid grant: account not found\"\n}"},
		{"revoked refresh token", revoked, "\"error\": \"invalid_grant\",\n  \"error_description\": \"Bad Request\"\n}"},
	}
	for _, tc := range cases {
		_, err := tokenFrom(t, tc.file)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Response.StatusCode != 400 || !strings.Contains(string(re.Body), tc.want) {
			t.Errorf("%s: got %v, want 400 with %s", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct {
		form url.Values
		code int
		want string
	}{
		{url.Values{"grant_type": {"password"}}, 400, "{\n  \"error\": \"unsupported_grant_type\",\n  \"error_description\": \"Invalid grant_type: password\"\n}"},
		{url.Values{}, 400, "{\n  \"error\": \"invalid_request\",\n  \"error_description\": \"Missing required parameter: grant_type\"\n}"},
		{url.Values{"grant_type": {"refresh_token"}, "client_id": {"nobody"}}, 401, "{\n  \"error\": \"invalid_client\",\n  \"error_description\": \"The OAuth client was not found.\"\n}"},
	} {
		resp, err := http.PostForm(hs.URL+"/token", tc.form)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || b.String() != tc.want {
			t.Errorf("POST /token %v: %d %s, want %d %s", tc.form, resp.StatusCode, b.String(), tc.code, tc.want)
		}
	}
}

// TestTokenLifetimeAndLatency: minted tokens live as long as configured and
// then get 401; the endpoint answers no sooner than the configured latency.
func TestTokenLifetimeAndLatency(t *testing.T) {
	srv, hs := newTestServer(t, Config{Project: "p1"})
	file, err := srv.AddUser(Account{Email: "ann@example.com", Grant: Grant{Projects: []string{"p1"}}}, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetTokenLifetime(time.Nanosecond) // expired before it is used
	srv.SetTokenLatency(200 * time.Millisecond)
	start := time.Now()
	tok, err := tokenFrom(t, file)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("token endpoint answered in %v, want at least the 200ms latency", took)
	}
	_, err = computeClient(t, hs, tok.AccessToken).Projects.Get("p1").Do()
	wantAPIError(t, err, 401, "authError")
}

// TestGenerateAccessToken speaks to the emulator with Google's
// iamcredentials client: token creators may impersonate, through
// delegates too; others get IAM's 403.
func TestGenerateAccessToken(t *testing.T) {
	srv, hs := newTestServer(t, Config{Project: "p1"})
	target := "deployer@p1.iam.gserviceaccount.com"
	hop := "hop@p1.iam.gserviceaccount.com"
	for _, a := range []Account{
		{Email: target, Grant: Grant{Projects: []string{"p1"}}, TokenCreators: []string{"ann@example.com", hop}},
		{Email: hop, TokenCreators: []string{"bob@example.com"}},
	} {
		if _, err := srv.AddServiceAccount(a, hs.URL); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		caller    string
		delegates []string
		ok        bool
	}{
		{"ann@example.com", nil, true},
		{"bob@example.com", nil, false},
		{"bob@example.com", []string{"projects/-/serviceAccounts/" + hop}, true},
		{"eve@example.com", []string{"projects/-/serviceAccounts/" + hop}, false},
	}
	for _, tc := range cases {
		caller := "tok-" + tc.caller
		srv.AddGrant(caller, Grant{Principal: tc.caller})
		svc, err := iamcredentials.NewService(context.Background(), option.WithEndpoint(hs.URL+"/"),
			option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: caller})))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := svc.Projects.ServiceAccounts.GenerateAccessToken("projects/-/serviceAccounts/"+target,
			&iamcredentials.GenerateAccessTokenRequest{Scope: []string{cloudPlatform}, Delegates: tc.delegates, Lifetime: "600s"}).Do()
		if !tc.ok {
			var gerr *googleapi.Error
			if !errors.As(err, &gerr) || gerr.Code != 403 || gerr.Message != "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)." {
				t.Errorf("%s via %v: got %v, want IAM's 403", tc.caller, tc.delegates, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s via %v: %v", tc.caller, tc.delegates, err)
		}
		exp, err := time.Parse(time.RFC3339, resp.ExpireTime)
		if err != nil || time.Until(exp) > 10*time.Minute || time.Until(exp) < 9*time.Minute {
			t.Errorf("expireTime %q, want 600s from now", resp.ExpireTime)
		}
		svcC := computeClient(t, hs, resp.AccessToken)
		p, err := svcC.Projects.Get("p1").Do()
		if err != nil {
			t.Fatal(err)
		}
		srv.ResetStats()
		if _, err := svcC.Projects.SetCommonInstanceMetadata("p1", &compute.Metadata{Fingerprint: p.CommonInstanceMetadata.Fingerprint}).Do(); err != nil {
			t.Fatal(err)
		}
		if by := srv.Stats().MetadataWritesBy; by[target] != 1 {
			t.Errorf("writes by %v, want one by %s", by, target)
		}
	}
	resp, err := http.Post(hs.URL+"/v1/projects/-/serviceAccounts/"+target+":generateAccessToken", "application/json", strings.NewReader(`{"scope":["x"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("no bearer token: %s, want 401", resp.Status)
	}
}

// TestControlAccounts: the control API registers accounts, returns their
// credentials files, and sets the token lifetime.
func TestControlAccounts(t *testing.T) {
	_, hs := newTestServer(t, Config{Project: "p1"})
	var file json.RawMessage
	if code := ctl(t, hs, "POST", "/control/accounts", map[string]any{"type": "service_account", "email": "r@p1.iam.gserviceaccount.com", "projects": []string{"p1"}}, &file); code != 200 {
		t.Fatalf("add account: %d", code)
	}
	var settings oauthSettings
	if code := ctl(t, hs, "POST", "/control/oauth", oauthSettings{Lifetime: "3s"}, &settings); code != 200 || settings.Lifetime != "3s" {
		t.Fatalf("set lifetime: %d %+v", code, settings)
	}
	tok, err := tokenFrom(t, file)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(tok.Expiry); left > 3*time.Second {
		t.Errorf("token lives %v, want at most 3s", left)
	}
	for _, bad := range []map[string]any{{"type": "service_account", "email": "nobody"}, {"type": "p12", "email": "a@b"}} {
		if code := ctl(t, hs, "POST", "/control/accounts", bad, nil); code != 400 {
			t.Errorf("add %v: %d, want 400", bad, code)
		}
	}
	if code := ctl(t, hs, "POST", "/control/oauth", oauthSettings{Latency: "soon"}, nil); code != 400 {
		t.Errorf("bad latency: %d, want 400", code)
	}
}

// TestIDTokenGrant: a JWT-bearer assertion with target_audience and no
// scope asks for an ID token, and Google answers with one (the emulator
// answered 400 "No valid scopes found", which every gcloud activation
// logged). Google's own idtoken client gets one for a
// key file: issuer accounts.google.com, the audience asked for, the
// account's e-mail, and its unique id (the key file's client_id) as
// subject.
func TestIDTokenGrant(t *testing.T) {
	srv, hs := newTestServer(t, Config{Project: "p1"})
	sa := "robot@p1.iam.gserviceaccount.com"
	file, err := srv.AddServiceAccount(Account{Email: sa}, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	var kf struct {
		ClientID string `json:"client_id"`
	}
	json.Unmarshal(file, &kf)
	const aud = "https://service.example.com"
	ts, err := idtoken.NewTokenSource(context.Background(), aud, option.WithAuthCredentialsJSON(option.ServiceAccount, file))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok.AccessToken)
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Iss, Aud, Sub, Azp, Email string
		EmailVerified             bool `json:"email_verified"`
		Iat, Exp                  int64
	}
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Iss != "https://accounts.google.com" || claims.Aud != aud || claims.Email != sa || !claims.EmailVerified ||
		claims.Sub != kf.ClientID || claims.Azp != kf.ClientID || claims.Exp-claims.Iat != 3600 {
		t.Errorf("claims %+v", claims)
	}
}
