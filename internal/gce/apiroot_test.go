package gce

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"
)

// hostRecorder answers every request with {} and records the URLs asked.
type hostRecorder struct {
	mu   sync.Mutex
	urls []string
}

func (h *hostRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.urls = append(h.urls, r.URL.Scheme+"://"+r.URL.Host+r.URL.Path)
	h.mu.Unlock()
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("{}")), Header: http.Header{}}, nil
}

// TestAPIRoots: a Compute endpoint of its own (Private Service Connect)
// sends only Compute calls there; OS Login, Resource Manager, IAM and IAP
// go to their own hosts, or to the endpoints APIs names.
func TestAPIRoots(t *testing.T) {
	for _, tc := range []struct {
		apis map[string]string
		want []string
	}{
		{nil, []string{
			"https://compute-psc.p.googleapis.com/compute/v1/projects/p/zones/z/instances/n/testIamPermissions",
			"https://cloudresourcemanager.googleapis.com/v3/projects/p:testIamPermissions",
			"https://iam.googleapis.com/v1/projects/p/serviceAccounts/sa@p.iam.gserviceaccount.com:testIamPermissions",
			"https://iap.googleapis.com/v1/projects/p/iap_tunnel/zones/z/instances/n:testIamPermissions",
			"https://oslogin.googleapis.com/v1/users/ann@example.com/loginProfile",
		}},
		{map[string]string{"oslogin": "https://oslogin-psc.p.googleapis.com/", "iam": "http://127.0.0.1:9/", "iap": "https://iap.mtls.googleapis.com/",
			"cloudresourcemanager": "https://crm.example/"}, []string{
			"https://compute-psc.p.googleapis.com/compute/v1/projects/p/zones/z/instances/n/testIamPermissions",
			"https://crm.example/v3/projects/p:testIamPermissions",
			"http://127.0.0.1:9/v1/projects/p/serviceAccounts/sa@p.iam.gserviceaccount.com:testIamPermissions",
			"https://iap.mtls.googleapis.com/v1/projects/p/iap_tunnel/zones/z/instances/n:testIamPermissions",
			"https://oslogin-psc.p.googleapis.com/v1/users/ann@example.com/loginProfile",
		}},
	} {
		rec := &hostRecorder{}
		c, err := New(context.Background(), "p", "https://compute-psc.p.googleapis.com/compute/v1/", oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok"}))
		if err != nil {
			t.Fatal(err)
		}
		c.HTTP, c.APIs = &http.Client{Transport: rec}, tc.apis
		ctx := context.Background()
		for _, on := range []string{OnInstance, OnProject, OnServiceAccount, OnIAPTunnel} {
			name := "n"
			if on == OnServiceAccount {
				name = "sa@p.iam.gserviceaccount.com"
			}
			c.TestPermissions(ctx, on, "z", name, []string{"x"})
		}
		c.LoginProfile(ctx, "ann@example.com")
		if strings.Join(rec.urls, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("APIs %v: asked\n%s\nwant\n%s", tc.apis, strings.Join(rec.urls, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}
