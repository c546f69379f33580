package cli

import (
	"os"

	"github.com/gkessh/gkessh/internal/gcloud"
	"github.com/gkessh/gkessh/internal/transport"
)

// transportFor builds the transport of every connection to Google from
// gcloud's network settings and the flags that override them; logf hears
// the proxy and client certificate in use.
func transportFor(cfg *gcloud.Config, g globalOptions, logf func(string, ...any)) (*transport.Transport, error) {
	n, err := cfg.Network()
	if err != nil {
		return nil, err
	}
	return transport.New(transport.Options{
		Network:         n,
		ComputeEndpoint: g.ComputeEndpoint,
		ComputeOrigin:   flagOrigin("--compute-endpoint", g.ComputeEndpoint, "GKESSH_COMPUTE_ENDPOINT"),
		RelayEndpoint:   g.IAPEndpoint,
		RelayOrigin:     flagOrigin("--iap-tunnel-url-override", g.IAPEndpoint, "GKESSH_IAP_ENDPOINT"),
		InsecureRelay:   g.InsecureIAP,
		Logf:            logf,
	})
}

// flagOrigin says where a flag's value came from: its variable when that
// holds the value, else the flag.
func flagOrigin(flag, value string, vars ...string) string {
	for _, v := range vars {
		if value != "" && os.Getenv(v) == value {
			return v
		}
	}
	return flag
}

// otherAPIs are the endpoints of the APIs beside Compute that the Compute
// client calls, by gcloud's name.
func otherAPIs(tr *transport.Transport) map[string]string {
	m := map[string]string{}
	for _, api := range []transport.API{transport.OSLogin, transport.ResourceManager, transport.IAM, transport.IAP} {
		m[string(api)] = tr.Endpoint(api).URL
	}
	return m
}
