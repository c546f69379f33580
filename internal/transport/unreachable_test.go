package transport

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/internal/gcloud"
)

// TestUnreachable: a connection to an endpoint that cannot be made is an
// *UnreachableError naming what is served there, its URL and the setting
// that chose it, and none of the socket error's addresses; a proxy's
// failure and a cancelled call stay what they were.
func TestUnreachable(t *testing.T) {
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := down.Addr().String()
	down.Close()
	base := "http://" + dead + "/"
	n := network(func(n *gcloud.Network) {
		n.Endpoints = map[string]gcloud.Setting{"oslogin": {Value: base, Source: "CLOUDSDK_API_ENDPOINT_OVERRIDES_OSLOGIN"}}
		n.TokenHost = gcloud.Setting{Value: base + "token", Source: "CLOUDSDK_AUTH_TOKEN_HOST"}
	})
	tr, err := New(Options{Network: n, Env: envOf(nil),
		ComputeEndpoint: base + "compute/v1/", ComputeOrigin: "GKESSH_COMPUTE_ENDPOINT",
		RelayEndpoint: "ws://" + dead, RelayOrigin: "--iap-tunnel-url-override"})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := tr.WSDialer()
	if err != nil {
		t.Fatal(err)
	}
	get := func(c *http.Client, u string) error {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	cases := []struct {
		name string
		call func() error
		want string
	}{
		// The emulator serves every API on one host: the longest base
		// URL that prefixes the call names it.
		{"compute", func() error {
			return get(tr.HTTPClient(), base+"compute/v1/projects/p/zones/z/instances/n?prettyPrint=false")
		},
			"cannot reach the compute API at " + base + "compute/v1/ (set by GKESSH_COMPUTE_ENDPOINT): "},
		{"oslogin", func() error { return get(tr.HTTPClient(), base+"v1/users/u/loginProfile") },
			"cannot reach the oslogin API at " + base + " (set by api_endpoint_overrides/oslogin (CLOUDSDK_API_ENDPOINT_OVERRIDES_OSLOGIN)): "},
		{"token endpoint", func() error { return get(tr.OAuthClient(), base+"token") },
			"cannot reach the OAuth token endpoint at " + base + "token (set by auth/token_host (CLOUDSDK_AUTH_TOKEN_HOST)): "},
		{"relay", func() error {
			c, _, err := ws.Dial("ws://"+dead+"/v4/connect", nil)
			if err == nil {
				c.Close()
			}
			return err
		}, "cannot reach the IAP relay at ws://" + dead + " (set by --iap-tunnel-url-override): "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ue *UnreachableError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want an *UnreachableError", err)
			}
			msg := ue.Error()
			if !strings.HasPrefix(msg, tc.want) || strings.Contains(msg, "dial tcp") || strings.Count(msg, dead) != 1 {
				t.Errorf("message %q, want it to start %q, with the address once and no socket error's", msg, tc.want)
			}
		})
	}

	t.Run("proxy down", func(t *testing.T) {
		ptr := viaProxy(t, "http", dead, "", "", true)
		_, err := ptr.HTTPClient().Get("https://compute.googleapis.com/compute/v1/")
		var ue *UnreachableError
		var pe *ProxyError
		if errors.As(err, &ue) || !errors.As(err, &pe) {
			t.Errorf("err = %v, want a *ProxyError only", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"compute/v1/", nil)
		_, err := tr.HTTPClient().Do(req)
		var ue *UnreachableError
		if err == nil || errors.As(err, &ue) {
			t.Errorf("err = %v, want the cancellation, not an *UnreachableError", err)
		}
	})
}

// TestDialReason: the reason names the cause, not the addresses.
func TestDialReason(t *testing.T) {
	cases := []struct {
		err      error
		want     string
		noSuchIt bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}, "no host is named x.invalid", true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "server misbehaving", Name: "x.example", Server: "10.0.0.1:53"}}, "looking up x.example: server misbehaving", false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "i/o timeout", Name: "x.example", IsTimeout: true}}, "looking up x.example: i/o timeout", false},
	}
	for _, tc := range cases {
		e := &UnreachableError{Endpoint: Endpoint{URL: "https://x/"}, Err: tc.err}
		if got := dialReason(tc.err); got != tc.want {
			t.Errorf("dialReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
		if e.NoSuchHost() != tc.noSuchIt {
			t.Errorf("NoSuchHost(%v) = %v", tc.err, !tc.noSuchIt)
		}
	}
}
