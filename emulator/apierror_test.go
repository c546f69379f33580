//go:build unix

package emulator

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestErrorBodies: each API's errors come byte for byte in the shape Google
// gives them (apierror.go): Compute's with an errors array, the front
// end's 401 naming the Authorization header with status UNAUTHENTICATED,
// and OS Login's as google.rpc.Status, without an errors array.
func TestErrorBodies(t *testing.T) {
	srv, hs := newTestServer(t, Config{Project: "p1"})
	srv.AddGrant("alice-token", Grant{Principal: "alice@example.com", Projects: []string{"p1"}})
	const (
		help    = " Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
		invalid = "Request had invalid authentication credentials." + help
		missing = "Request is missing required authentication credential." + help
	)
	for _, tc := range []struct {
		name, method, path, token string
		code                      int
		body                      string
	}{
		{"compute not found", "GET", "/compute/v1/projects/p1/zones/us-west1-a/instances/nope", srv.Token(), 404,
			`{"error":{"code":404,"message":"The resource 'projects/p1/zones/us-west1-a/instances/nope' was not found",` +
				`"errors":[{"message":"The resource 'projects/p1/zones/us-west1-a/instances/nope' was not found","domain":"global","reason":"notFound"}]}}`},
		{"compute no token", "GET", "/compute/v1/projects/p1", "", 401,
			`{"error":{"code":401,"message":"` + missing + `",` +
				`"errors":[{"message":"Login Required.","domain":"global","reason":"required","location":"Authorization","locationType":"header"}],` +
				`"status":"UNAUTHENTICATED"}}`},
		{"compute bad token", "GET", "/compute/v1/projects/p1", "nope", 401,
			`{"error":{"code":401,"message":"` + invalid + `",` +
				`"errors":[{"message":"Invalid Credentials","domain":"global","reason":"authError","location":"Authorization","locationType":"header"}],` +
				`"status":"UNAUTHENTICATED"}}`},
		{"oslogin bad token", "GET", "/v1/users/alice@example.com/loginProfile", "nope", 401,
			`{"error":{"code":401,"message":"` + invalid + `","status":"UNAUTHENTICATED"}}`},
		{"oslogin other user", "GET", "/v1/users/bob@example.com/loginProfile", "alice-token", 403,
			`{"error":{"code":403,"message":"The caller does not have permission on users/bob@example.com","status":"PERMISSION_DENIED"}}`},
		{"oslogin no such key", "DELETE", "/v1/users/alice@example.com/sshPublicKeys/abc", "alice-token", 404,
			`{"error":{"code":404,"message":"The resource 'users/alice@example.com/sshPublicKeys/abc' was not found","status":"NOT_FOUND"}}`},
		{"oslogin bad mask", "PATCH", "/v1/users/alice@example.com/sshPublicKeys/abc?updateMask=key", "alice-token", 400,
			`{"error":{"code":400,"message":"Invalid update mask \"key\": the emulator updates expirationTimeUsec only","status":"INVALID_ARGUMENT"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := url.Parse(hs.URL + tc.path)
			q := u.Query()
			q.Set("prettyPrint", "false") // compact, to read; TestPrettyPrint has them indented
			u.RawQuery = q.Encode()
			req, err := http.NewRequest(tc.method, u.String(), strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := hs.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code || string(body) != tc.body+"\n" {
				t.Errorf("%d %s\nwant %d %s", resp.StatusCode, body, tc.code, tc.body)
			}
			challenge := resp.Header.Get("WWW-Authenticate")
			if (tc.code == 401) != (challenge == `Bearer realm="https://accounts.google.com/"`) {
				t.Errorf("WWW-Authenticate %q on a %d", challenge, resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}
