//go:build unix

package cli

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/testcert"
	"github.com/gkessh/gkessh/internal/testnet"
)

// deviceCert writes a client certificate for cn, valid until notAfter,
// and an enterprise certificate config of the workload form naming it; it
// returns the config's path.
func deviceCert(t *testing.T, cn string, notAfter time.Time) string {
	t.Helper()
	notBefore := notAfter.Add(-48 * time.Hour)
	if now := time.Now().Add(-time.Hour); now.Before(notBefore) {
		notBefore = now
	}
	return testcert.Workload(t, testcert.NewCA(t, "device CA").Client(t, cn, notBefore, notAfter))
}

// TestDoctorNetwork: doctor shows the proxy (never its password), the
// client certificate with its subject and expiry, the endpoints and
// headers that are not Google's, each with where it was set; a proxy that
// is down fails the API check naming it, with what to do.
func TestDoctorNetwork(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	down := testnet.Refused(t)
	host, port, _ := net.SplitHostPort(down)
	proxy := "http://" + down
	expires := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)
	for k, v := range map[string]string{
		"CLOUDSDK_PROXY_TYPE": "http", "CLOUDSDK_PROXY_ADDRESS": host, "CLOUDSDK_PROXY_PORT": port,
		"CLOUDSDK_PROXY_USERNAME": "ann", "CLOUDSDK_PROXY_PASSWORD": "s3cret",
		"CLOUDSDK_CORE_REQUEST_REASON":                        "ticket 42",
		"CLOUDSDK_CONTEXT_AWARE_USE_CLIENT_CERTIFICATE":       "true",
		"CLOUDSDK_CONTEXT_AWARE_CERTIFICATE_CONFIG_FILE_PATH": deviceCert(t, "laptop-42", expires),
	} {
		e.setenv(k, v)
	}
	out, stderr, code := e.run("doctor")
	for _, want := range []string{
		"ok    proxy " + proxy + " as ann, from proxy/type, proxy/address, proxy/port (CLOUDSDK_PROXY_TYPE)\n",
		"ok    client certificate CN=laptop-42,O=gkessh tests, expires " + expires.Format(time.RFC3339) + " (in 90 days), from workload certificate",
		"ok    compute API at " + e.url + "/compute/v1/, from GKESSH_COMPUTE_ENDPOINT\n",
		"ok    oslogin API at " + e.url + "/, from api_endpoint_overrides/oslogin (CLOUDSDK_API_ENDPOINT_OVERRIDES_OSLOGIN)\n",
		"ok    X-Goog-Request-Reason: ticket 42, from core/request_reason (CLOUDSDK_CORE_REQUEST_REASON)\n",
		"FAIL  compute API: ", "proxy " + proxy + " (proxy/type, proxy/address, proxy/port (CLOUDSDK_PROXY_TYPE)), connecting to 127.0.0.1:",
		"check that the proxy is up",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor's output lacks %q:\n%s", want, out)
		}
	}
	if code != exitOther || strings.Contains(out+stderr, "s3cret") {
		t.Errorf("exit %d (want %d), and the password must not show:\n%s%s", code, exitOther, out, stderr)
	}

	// A login through the proxy that is down is gkessh's own failure.
	_, stderr, code = e.run(e.srv.Nodes()[0], "--", "true")
	if code != 255 || !strings.Contains(stderr, proxy) || !strings.Contains(stderr, "check that the proxy is up") || strings.Contains(stderr, "s3cret") {
		t.Errorf("login through a dead proxy: exit %d, stderr %q", code, stderr)
	}
}

// TestDoctorExpiredCertificate: a client certificate out of date fails
// doctor with its dates and the way out.
func TestDoctorExpiredCertificate(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{})
	expired := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	e.setenv("CLOUDSDK_CONTEXT_AWARE_USE_CLIENT_CERTIFICATE", "1")
	e.setenv("CLOUDSDK_CONTEXT_AWARE_CERTIFICATE_CONFIG_FILE_PATH", deviceCert(t, "old-laptop", expired))
	out, _, code := e.run("doctor")
	want := "FAIL  client certificate: the client certificate CN=old-laptop,O=gkessh tests (from workload certificate"
	if code != exitOther || !strings.Contains(out, want) || !strings.Contains(out, "to 2024-03-01T00:00:00Z, not now: renew it") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

// TestRequestHeaders: core/request_reason and billing/quota_project, set
// as gcloud's variables, reach the emulator on every call a login makes:
// X-Goog-Request-Reason on the APIs' calls and the relay's websocket,
// X-Goog-User-Project on the APIs' calls only (gcloud's websocket sends
// the reason alone, iap_tunnel_websocket.py), seen as the emulator
// receives them.
func TestRequestHeaders(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	front := newFront(t, e)
	e.url = front.url
	e.setenv("CLOUDSDK_CORE_REQUEST_REASON", "ticket 42")
	e.setenv("CLOUDSDK_BILLING_QUOTA_PROJECT", "billing-project")
	if out, stderr, code := e.run(e.srv.Nodes()[0], "--", "echo", "hi"); code != 0 || out != "hi\n" {
		t.Fatalf("exit %d, %q\n%s", code, out, stderr)
	}
	var apis, relay int
	for _, r := range front.requests() {
		ws := r.Header.Get("Upgrade") == "websocket"
		if ws {
			relay++
		} else {
			apis++
		}
		reason, quota := r.Header.Get("X-Goog-Request-Reason"), r.Header.Get("X-Goog-User-Project")
		if reason != "ticket 42" || (ws && quota != "") || (!ws && quota != "billing-project") {
			t.Errorf("%s %s: X-Goog-Request-Reason %q, X-Goog-User-Project %q", r.Method, r.URL.Path, reason, quota)
		}
	}
	if apis < 2 || relay < 1 {
		t.Errorf("the emulator saw %d API calls and %d relay websockets, want the login's", apis, relay)
	}
}

// front serves e's emulator at a URL of its own and records the requests
// it passes on, as the emulator receives them (the control API's aside).
type front struct {
	url  string
	mu   sync.Mutex
	seen []*http.Request
}

func newFront(t *testing.T, e *testEnv) *front {
	f := &front{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/control/") {
			f.mu.Lock()
			f.seen = append(f.seen, r.Clone(context.Background()))
			f.mu.Unlock()
		}
		e.srv.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	f.url = hs.URL
	return f
}

func (f *front) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.seen...)
}

// TestEndpointsApart: each API's endpoint setting (gcloud's
// api_endpoint_overrides, GKESSH_COMPUTE_ENDPOINT, GKESSH_IAP_ENDPOINT)
// gets that API's calls and no other's: a Compute endpoint of its own (a
// Private Service Connect one) changes nothing else. Each is a front of
// its own before the one emulator; a login, doctor NODE and a login to an
// OS Login VM call every API.
func TestEndpointsApart(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	node := e.srv.Nodes()[0]
	apis := map[string]struct {
		setting string
		is      func(path string) bool
	}{
		"compute":              {"GKESSH_COMPUTE_ENDPOINT", func(p string) bool { return strings.HasPrefix(p, "/compute/v1/") }},
		"oslogin":              {"CLOUDSDK_API_ENDPOINT_OVERRIDES_OSLOGIN", func(p string) bool { return strings.HasPrefix(p, "/v1/users/") }},
		"cloudresourcemanager": {"CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER", func(p string) bool { return strings.HasPrefix(p, "/v3/projects/") }},
		"iam":                  {"CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM", func(p string) bool { return strings.Contains(p, "/serviceAccounts/") }},
		"iap":                  {"CLOUDSDK_API_ENDPOINT_OVERRIDES_IAP", func(p string) bool { return strings.Contains(p, "/iap_tunnel/") }},
		"relay":                {"GKESSH_IAP_ENDPOINT", func(p string) bool { return p == "/v4/connect" }},
	}
	fronts := map[string]*front{}
	for name, api := range apis {
		f := newFront(t, e)
		fronts[name] = f
		switch name {
		case "compute":
			e.setenv(api.setting, f.url+"/compute/v1/")
		case "relay":
			e.setenv(api.setting, "ws"+strings.TrimPrefix(f.url, "http"))
		default:
			e.setenv(api.setting, f.url+"/")
		}
	}
	if out, stderr, code := e.run(node, "--", "echo", "hi"); code != 0 || out != "hi\n" {
		t.Fatalf("login: exit %d, %q\n%s", code, out, stderr)
	}
	out, _, _ := e.run("doctor", node)
	// An OS Login VM, for the OS Login API.
	e.seedProject(map[string]string{"enable-oslogin": "TRUE"})
	if _, err := e.srv.AddNode("plain-vm", "us-west1-a"); err != nil {
		t.Fatal(err)
	}
	e.setenv("CLOUDSDK_CORE_ACCOUNT", "owner@"+e.srv.ProjectName()+".example") // the emulator token's principal
	if _, stderr, code := e.run("plain-vm", "--", "true"); code != 0 {
		t.Errorf("login to an OS Login VM: exit %d\n%s", code, stderr)
	}
	for name, f := range fronts {
		reqs := f.requests()
		if len(reqs) == 0 {
			t.Errorf("%s's endpoint got no call; doctor:\n%s", name, out)
		}
		for _, r := range reqs {
			if !apis[name].is(r.URL.Path) {
				t.Errorf("%s's endpoint got %s %s", name, r.Method, r.URL.Path)
			}
		}
	}
}

// TestUniverseMismatch: credentials from one universe under a
// configuration naming another are refused before any call, with
// gcloud's reasoning (store.py) and gkessh's own failure status; nothing
// reaches the emulator.
func TestUniverseMismatch(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	key, err := e.srv.AddServiceAccount(emulator.Account{Email: "robot@" + e.srv.ProjectName() + ".iam.gserviceaccount.com"}, e.url)
	if err != nil {
		t.Fatal(err)
	}
	e.setenv("GKESSH_ACCESS_TOKEN_FILE", "")
	e.setenv("GOOGLE_APPLICATION_CREDENTIALS", testcert.JSON(t, json.RawMessage(key)))
	e.setenv("CLOUDSDK_CORE_UNIVERSE_DOMAIN", "apis-tpc.goog")
	before := e.srv.Stats()
	_, stderr, code := e.run(e.srv.Nodes()[0], "--", "true")
	want := `Your credentials are from "googleapis.com", but your [core/universe_domain] property is set to "apis-tpc.goog". ` +
		`Update your active account to an account from "apis-tpc.goog" or update the [core/universe_domain] property to "googleapis.com"`
	if code != 255 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want 255 and %q", code, stderr, want)
	}
	if after := e.srv.Stats(); after.APICalls != before.APICalls || after.TokenGrants != before.TokenGrants {
		t.Errorf("a refused universe made %d API calls and %d token grants", after.APICalls-before.APICalls, after.TokenGrants-before.TokenGrants)
	}
}
