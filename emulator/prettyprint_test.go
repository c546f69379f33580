//go:build unix

package emulator

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// prettyPrints are the ways a call can set prettyPrint: Google indents
// unless it is false.
var prettyPrints = []struct {
	query  string // added to the call's URL
	pretty bool
}{{"", true}, {"prettyPrint=true", true}, {"prettyPrint=false", false}}

// rawCall makes one API call and returns its status, Content-Type and
// body as sent.
func rawCall(t *testing.T, hs *httptest.Server, method, path, query, token, body string) (int, string, string) {
	t.Helper()
	if query != "" {
		if strings.Contains(path, "?") {
			path += "&" + query
		} else {
			path += "?" + query
		}
	}
	req, err := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == "POST" && strings.HasPrefix(body, "grant_type=") {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// TestPrettyPrint: each API answers byte for byte as Google's does for
// prettyPrint absent, true and false: its JSON APIs indent by two spaces
// with "key": value and end in a newline, compact only when the call asks
// prettyPrint=false; the token endpoint indents whatever the call asks,
// with no newline at the end.
func TestPrettyPrint(t *testing.T) {
	srv, hs := newTestServer(t, Config{Project: "p1"})
	srv.AddGrant("alice-token", Grant{Principal: "alice@example.com", Projects: []string{"p1"}})
	srv.AddGrant("viewer", Grant{Principal: "viewer@example.com", Projects: []string{"p1"}, Permissions: []string{"compute.instances.get"}})
	n, err := srv.AddNode("vm-1", "us-west1-a")
	if err != nil {
		t.Fatal(err)
	}
	const (
		apiJSON   = "application/json; charset=UTF-8"
		tokenJSON = "application/json; charset=utf-8"
		missing   = "Request is missing required authentication credential." + authHelp
		notFound  = "The resource 'projects/p1/zones/us-west1-a/instances/nope' was not found"
	)
	instance := "/compute/v1/projects/p1/zones/" + n.Zone + "/instances/" + n.Name
	for _, tc := range []struct {
		api, name, method, path, token, body string
		code                                 int
		compact, pretty, contentType         string
	}{
		{"compute", "not found", "GET", "/compute/v1/projects/p1/zones/us-west1-a/instances/nope", srv.Token(), "", 404,
			`{"error":{"code":404,"message":"` + notFound + `","errors":[{"message":"` + notFound + `","domain":"global","reason":"notFound"}]}}` + "\n",
			"{\n  \"error\": {\n    \"code\": 404,\n    \"message\": \"" + notFound + "\",\n" +
				"    \"errors\": [\n      {\n        \"message\": \"" + notFound + "\",\n        \"domain\": \"global\",\n        \"reason\": \"notFound\"\n      }\n    ]\n  }\n}\n",
			apiJSON},
		{"compute", "no token", "GET", "/compute/v1/projects/p1", "", "", 401,
			`{"error":{"code":401,"message":"` + missing + `","errors":[{"message":"Login Required.","domain":"global","reason":"required",` +
				`"location":"Authorization","locationType":"header"}],"status":"UNAUTHENTICATED"}}` + "\n",
			"{\n  \"error\": {\n    \"code\": 401,\n    \"message\": \"" + missing + "\",\n" +
				"    \"errors\": [\n      {\n        \"message\": \"Login Required.\",\n        \"domain\": \"global\",\n        \"reason\": \"required\",\n" +
				"        \"location\": \"Authorization\",\n        \"locationType\": \"header\"\n      }\n    ],\n    \"status\": \"UNAUTHENTICATED\"\n  }\n}\n",
			apiJSON},
		{"compute", "testIamPermissions", "POST", instance + "/testIamPermissions", "viewer",
			`{"permissions":["compute.instances.get","compute.instances.setMetadata"]}`, 200,
			`{"permissions":["compute.instances.get"]}` + "\n",
			"{\n  \"permissions\": [\n    \"compute.instances.get\"\n  ]\n}\n",
			apiJSON},
		{"oslogin", "other user", "GET", "/v1/users/bob@example.com/loginProfile", "alice-token", "", 403,
			`{"error":{"code":403,"message":"The caller does not have permission on users/bob@example.com","status":"PERMISSION_DENIED"}}` + "\n",
			"{\n  \"error\": {\n    \"code\": 403,\n    \"message\": \"The caller does not have permission on users/bob@example.com\",\n    \"status\": \"PERMISSION_DENIED\"\n  }\n}\n",
			apiJSON},
		{"oslogin", "loginProfile", "GET", "/v1/users/alice@example.com/loginProfile", "alice-token", "", 200,
			`{"name":"alice@example.com","posixAccounts":[{"accountId":"p1","gid":"26500","homeDirectory":"/home/alice_example_com",` +
				`"name":"users/alice@example.com/projects/p1","operatingSystemType":"LINUX","primary":true,"shell":"/bin/bash",` +
				`"uid":"26500","username":"alice_example_com"}],"sshPublicKeys":{}}` + "\n",
			"{\n  \"name\": \"alice@example.com\",\n  \"posixAccounts\": [\n    {\n      \"accountId\": \"p1\",\n      \"gid\": \"26500\",\n" +
				"      \"homeDirectory\": \"/home/alice_example_com\",\n      \"name\": \"users/alice@example.com/projects/p1\",\n" +
				"      \"operatingSystemType\": \"LINUX\",\n      \"primary\": true,\n      \"shell\": \"/bin/bash\",\n" +
				"      \"uid\": \"26500\",\n      \"username\": \"alice_example_com\"\n    }\n  ],\n  \"sshPublicKeys\": {}\n}\n",
			apiJSON},
		{"iam", "testIamPermissions none held", "POST", "/v1/projects/p1/serviceAccounts/sa@p1.iam.gserviceaccount.com:testIamPermissions", "viewer",
			`{"permissions":["iam.serviceAccounts.actAs"]}`, 200, "{}\n", "{}\n", apiJSON},
		{"iam", "testIamPermissions", "POST", "/v1/projects/p1/serviceAccounts/sa@p1.iam.gserviceaccount.com:testIamPermissions", srv.Token(),
			`{"permissions":["iam.serviceAccounts.actAs"]}`, 200,
			`{"permissions":["iam.serviceAccounts.actAs"]}` + "\n",
			"{\n  \"permissions\": [\n    \"iam.serviceAccounts.actAs\"\n  ]\n}\n",
			apiJSON},
		{"iamcredentials", "generateAccessToken refused", "POST", "/v1/projects/-/serviceAccounts/sa@p1.iam.gserviceaccount.com:generateAccessToken", "alice-token",
			`{"scope":["https://www.googleapis.com/auth/cloud-platform"]}`, 403,
			`{"error":{"code":403,"message":"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).","status":"PERMISSION_DENIED"}}` + "\n",
			"{\n  \"error\": {\n    \"code\": 403,\n    \"message\": \"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).\",\n    \"status\": \"PERMISSION_DENIED\"\n  }\n}\n",
			apiJSON},
		{"oauth", "unsupported grant", "POST", "/token", "", "grant_type=password", 400,
			"{\n  \"error\": \"unsupported_grant_type\",\n  \"error_description\": \"Invalid grant_type: password\"\n}",
			"{\n  \"error\": \"unsupported_grant_type\",\n  \"error_description\": \"Invalid grant_type: password\"\n}",
			tokenJSON},
	} {
		for _, pp := range prettyPrints {
			t.Run(tc.api+"/"+tc.name+"/"+pp.query, func(t *testing.T) {
				want := tc.pretty
				if !pp.pretty {
					want = tc.compact
				}
				code, ct, body := rawCall(t, hs, tc.method, tc.path, pp.query, tc.token, tc.body)
				if code != tc.code || body != want || ct != tc.contentType {
					t.Errorf("%d %s %q\nwant %d %s %q", code, ct, body, tc.code, tc.contentType, want)
				}
			})
		}
	}
}

// TestPrettyPrintLists: instance listings, which the emulator keeps
// encoded (instancejson.go), are indented like every other answer.
func TestPrettyPrintLists(t *testing.T) {
	srv, hs := newTestServer(t, Config{Project: "p1", Nodes: 2})
	for _, path := range []string{"/compute/v1/projects/p1/aggregated/instances", "/compute/v1/projects/p1/zones/us-west1-a/instances"} {
		_, _, compact := rawCall(t, hs, "GET", path, "prettyPrint=false", srv.Token(), "")
		_, _, pretty := rawCall(t, hs, "GET", path, "", srv.Token(), "")
		var want bytes.Buffer
		if err := json.Indent(&want, []byte(compact), "", "  "); err != nil {
			t.Fatalf("%s: %v: %.200s", path, err, compact)
		}
		if !strings.HasPrefix(compact, `{"id":"projects/p1/`) || pretty != want.String() {
			t.Errorf("%s: compact\n%.300s\npretty\n%.300s", path, compact, pretty)
		}
	}
}

// TestGzip: an answer is compressed only for a call that accepts gzip and
// names gzip in its User-Agent, as Google's are, and it is then the same
// answer, errors too.
func TestGzip(t *testing.T) {
	srv, hs := newTestServer(t, Config{Project: "p1", Nodes: 1})
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}} // to see the body as sent
	for _, path := range []string{"/compute/v1/projects/p1/aggregated/instances", "/compute/v1/projects/p1/zones/us-west1-a/instances/nope"} {
		_, _, want := rawCall(t, hs, "GET", path, "prettyPrint=false", srv.Token(), "")
		for _, tc := range []struct {
			accept, agent string
			gzip          bool
		}{
			{"gzip", "my program (gzip)", true},
			{"deflate, gzip;q=0.5", "gkessh (gzip)", true},
			{"gzip", "gkessh", false},
			{"", "my program (gzip)", false},
			{"identity", "my program (gzip)", false},
		} {
			req, _ := http.NewRequest("GET", hs.URL+path+"?prettyPrint=false", nil)
			req.Header.Set("Authorization", "Bearer "+srv.Token())
			req.Header.Set("User-Agent", tc.agent)
			if tc.accept != "" {
				req.Header.Set("Accept-Encoding", tc.accept)
			}
			resp, err := raw.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("%s, Accept-Encoding %q, User-Agent %q", path, tc.accept, tc.agent)
			if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.gzip {
				t.Errorf("%s: gzip %v, want %v", name, got, tc.gzip)
				continue
			}
			if tc.gzip {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			if string(body) != want {
				t.Errorf("%s: answer %.80q, want %.80q", name, body, want)
			}
		}
	}
}
