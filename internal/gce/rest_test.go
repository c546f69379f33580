package gce

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// serve returns a client for project "p" whose API is handler.
func serve(t *testing.T, handler http.HandlerFunc) *Client {
	t.Helper()
	hs := httptest.NewServer(handler)
	t.Cleanup(hs.Close)
	c, err := New(context.Background(), "p", hs.URL+"/compute/v1", oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok"}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSetSendsWhatGCEExpects checks one set call on the wire: the headers,
// a requestId, and a body without items when the list is empty, as the
// official client sends it, followed by a wait on the operation.
func TestSetSendsWhatGCEExpects(t *testing.T) {
	var paths []string
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.Method+" "+r.URL.Path)
		if got := r.Header.Get("Authorization"); got != "Bearer tok" {
			t.Errorf("Authorization %q", got)
		}
		// Both, or Google does not compress a 50 MB listing.
		if got := r.Header.Get("User-Agent"); got != "gkessh (gzip)" {
			t.Errorf("User-Agent %q", got)
		}
		if got := r.Header.Get("Accept-Encoding"); got != "gzip" {
			t.Errorf("Accept-Encoding %q", got)
		}
		if got := r.URL.Query().Get("prettyPrint"); got != "false" {
			t.Errorf("prettyPrint %q", got)
		}
		if strings.HasSuffix(r.URL.Path, "/setMetadata") {
			if r.URL.Query().Get("requestId") == "" {
				t.Error("set call without a requestId")
			}
			if got := r.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			body, _ := io.ReadAll(r.Body)
			if got, want := strings.TrimSpace(string(body)), `{"fingerprint":"f1"}`; got != want {
				t.Errorf("body %s, want %s", got, want)
			}
			json.NewEncoder(w).Encode(operation{Name: "op-1", Status: "RUNNING"})
			return
		}
		json.NewEncoder(w).Encode(operation{Name: "op-1", Status: "DONE"})
	})
	if err := c.SetInstanceMetadata(testContext(t), "z", "n", &Metadata{Fingerprint: "f1"}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"POST /compute/v1/projects/p/zones/z/instances/n/setMetadata",
		"POST /compute/v1/projects/p/zones/z/operations/op-1/wait",
	}
	if strings.Join(paths, "\n") != strings.Join(want, "\n") {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(paths, "\n"), strings.Join(want, "\n"))
	}
}

func TestListFollowsPages(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("maxResults") != "500" || q.Get("filter") != "name eq ^a$" {
			t.Errorf("query %s", r.URL.RawQuery)
		}
		page := instanceAggregatedList{Items: map[string]instancesScopedList{
			"zones/z1": {Instances: []*Instance{{Name: "a", Id: 1}}},
			"zones/z2": {},
		}}
		switch q.Get("pageToken") {
		case "":
			page.NextPageToken = "next"
		case "next":
			page.Items["zones/z1"] = instancesScopedList{Instances: []*Instance{{Name: "a", Id: 2}}}
		default:
			t.Errorf("pageToken %q", q.Get("pageToken"))
		}
		json.NewEncoder(w).Encode(page)
	})
	found, err := c.List(testContext(t), "name eq ^a$")
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || found[0].Id != 1 || found[1].Id != 2 {
		t.Fatalf("found %+v, want ids 1 then 2", found)
	}
}

func TestAPIErrorFromReply(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"google's body", 412,
			`{"error":{"code":412,"message":"Supplied fingerprint does not match current metadata fingerprint.","errors":[{"domain":"global","reason":"conditionNotMet","message":"x"}]}}`,
			"412 Precondition Failed: Supplied fingerprint does not match current metadata fingerprint. (conditionNotMet)"},
		{"not json", 502, "<html>" + strings.Repeat("x", 300) + "</html>", "502 Bad Gateway: <html>" + strings.Repeat("x", 194) + "…"},
		{"empty", 503, "", "503 Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			_, err := c.Project(testContext(t))
			if statusCode(err) != tt.status || !strings.HasSuffix(err.Error(), ": "+tt.want) {
				t.Fatalf("err = %v, want status %d ending in %q", err, tt.status, tt.want)
			}
		})
	}
}

// TestAPIErrorShapes: both of Google's error bodies are read for their
// code, message and reasons: Compute's errors array (with the front end's
// 401 fields) and the google.rpc.Status of OS Login, which has none.
func TestAPIErrorShapes(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		code       int
		want       APIError
	}{
		{"compute", `{"error":{"code":404,"message":"The resource 'projects/p/zones/z/instances/i' was not found",` +
			`"errors":[{"message":"The resource 'projects/p/zones/z/instances/i' was not found","domain":"global","reason":"notFound"}]}}`,
			404, APIError{404, "The resource 'projects/p/zones/z/instances/i' was not found", []string{"notFound"}}},
		{"front end's 401", `{"error":{"code":401,"message":"Request had invalid authentication credentials.",` +
			`"errors":[{"message":"Invalid Credentials","domain":"global","reason":"authError","location":"Authorization","locationType":"header"}],` +
			`"status":"UNAUTHENTICATED"}}`,
			401, APIError{401, "Request had invalid authentication credentials.", []string{"authError"}}},
		{"google.rpc.Status", `{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}`,
			403, APIError{Code: 403, Message: "The caller does not have permission"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := readAPIError(&http.Response{StatusCode: tt.code, Body: io.NopCloser(strings.NewReader(tt.body))})
			if got.Code != tt.want.Code || got.Message != tt.want.Message || !slices.Equal(got.Reasons, tt.want.Reasons) {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}
