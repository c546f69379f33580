package transport

import (
	"testing"

	"github.com/gkessh/gkessh/internal/gcloud"
)

func TestEndpoints(t *testing.T) {
	conf := `gcloud configuration "default"`
	cases := []struct {
		name string
		n    func(n *gcloud.Network)
		o    Options
		api  API
		want Endpoint
	}{
		{"compute default", nil, Options{}, Compute, Endpoint{"https://compute.googleapis.com/compute/v1/", ""}},
		{"oslogin default", nil, Options{}, OSLogin, Endpoint{"https://oslogin.googleapis.com/", ""}},
		{"mTLS", func(n *gcloud.Network) { n.ClientCert, n.ClientCertSource = true, conf }, Options{}, Compute,
			Endpoint{"https://compute.mtls.googleapis.com/compute/v1/", "context_aware/use_client_certificate (" + conf + ")"}},
		{"universe", func(n *gcloud.Network) { n.Universe = gcloud.Setting{Value: "apis-tpc.goog", Source: conf} }, Options{}, IAMCredentials,
			Endpoint{"https://iamcredentials.apis-tpc.goog/", "core/universe_domain (" + conf + ")"}},
		{"mTLS in a universe", func(n *gcloud.Network) {
			n.ClientCert, n.ClientCertSource = true, "X"
			n.Universe = gcloud.Setting{Value: "u.example", Source: "Y"}
		}, Options{}, IAM, Endpoint{"https://iam.mtls.u.example/", "context_aware/use_client_certificate (X), core/universe_domain (Y)"}},
		{"override, host only: the API's path is added", func(n *gcloud.Network) {
			n.Endpoints = map[string]gcloud.Setting{"compute": {Value: "https://compute-psc.p.googleapis.com/", Source: conf}}
		}, Options{}, Compute, Endpoint{"https://compute-psc.p.googleapis.com/compute/v1/", "api_endpoint_overrides/compute (" + conf + ")"}},
		{"override with a path is taken whole", func(n *gcloud.Network) {
			n.Endpoints = map[string]gcloud.Setting{"compute": {Value: "https://www.googleapis.com/compute/beta/", Source: conf}}
		}, Options{}, Compute, Endpoint{"https://www.googleapis.com/compute/beta/", "api_endpoint_overrides/compute (" + conf + ")"}},
		{"override beats mTLS", func(n *gcloud.Network) {
			n.ClientCert = true
			n.Endpoints = map[string]gcloud.Setting{"oslogin": {Value: "https://oslogin-psc.p.googleapis.com/", Source: conf}}
		}, Options{}, OSLogin, Endpoint{"https://oslogin-psc.p.googleapis.com/", "api_endpoint_overrides/oslogin (" + conf + ")"}},
		{"a Compute override changes nothing else", func(n *gcloud.Network) {
			n.Endpoints = map[string]gcloud.Setting{"compute": {Value: "https://compute-psc.p.googleapis.com/", Source: conf}}
		}, Options{ComputeEndpoint: "http://127.0.0.1:9/compute/v1/"}, OSLogin, Endpoint{"https://oslogin.googleapis.com/", ""}},
		{"the flag beats the property", func(n *gcloud.Network) {
			n.Endpoints = map[string]gcloud.Setting{"compute": {Value: "https://compute-psc.p.googleapis.com/", Source: conf}}
		}, Options{ComputeEndpoint: "http://127.0.0.1:9/compute/v1/", ComputeOrigin: "--compute-endpoint"}, Compute, Endpoint{"http://127.0.0.1:9/compute/v1/", "--compute-endpoint"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Network = network(tc.n)
			tr, err := New(withEnv(o))
			if err != nil {
				t.Fatal(err)
			}
			tr.cert = mtlsStub(o.Network)
			if got := tr.Endpoint(tc.api); got != tc.want {
				t.Errorf("Endpoint(%s) = %+v, want %+v", tc.api, got, tc.want)
			}
		})
	}
}

func TestRelayAndTokenHost(t *testing.T) {
	cases := []struct {
		name            string
		n               func(n *gcloud.Network)
		o               Options
		relay           string
		tokenAll, token string
	}{
		{"default", nil, Options{}, "wss://tunnel.cloudproxy.app", "", ""},
		{"mTLS", func(n *gcloud.Network) { n.ClientCert = true; n.MTLSTokenHost.Value = gcloud.DefaultMTLSTokenHost }, Options{},
			"wss://mtls.tunnel.cloudproxy.app", "", gcloud.DefaultMTLSTokenHost},
		{"universe, mTLS or not", func(n *gcloud.Network) {
			n.ClientCert = true
			n.Universe = gcloud.Setting{Value: "u.example", Source: "s"}
		}, Options{},
			"wss://tunnel-cloudproxy.u.example", "", ""},
		{"token host", func(n *gcloud.Network) {
			n.TokenHost = gcloud.Setting{Value: "https://oauth2-psc.p.googleapis.com/token", Source: "s"}
		}, Options{},
			"wss://tunnel.cloudproxy.app", "https://oauth2-psc.p.googleapis.com/token", "https://oauth2-psc.p.googleapis.com/token"},
		{"the flag", nil, Options{RelayEndpoint: "ws://127.0.0.1:9", RelayOrigin: "--iap-tunnel-url-override"}, "ws://127.0.0.1:9", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Network = network(tc.n)
			tr, err := New(withEnv(o))
			if err != nil {
				t.Fatal(err)
			}
			tr.cert = mtlsStub(o.Network)
			if got := tr.Relay().URL; got != tc.relay {
				t.Errorf("relay %q, want %q", got, tc.relay)
			}
			if all, user := tr.TokenHost(); all != tc.tokenAll || user != tc.token {
				t.Errorf("token hosts %q %q, want %q %q", all, user, tc.tokenAll, tc.token)
			}
		})
	}
}

func withEnv(o Options) Options {
	o.Env = envOf(nil)
	if o.Network.ClientCert {
		// New would look for a certificate; the endpoints only need the
		// setting, so mtlsStub stands in.
		n := *o.Network
		n.ClientCert = false
		o.Network = &n
	}
	return o
}

func mtlsStub(n *gcloud.Network) *certSource {
	if !n.ClientCert {
		return nil
	}
	return &certSource{}
}
