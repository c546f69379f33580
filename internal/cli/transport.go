package cli

import (
	"cmp"

	"github.com/gkessh/gkessh/internal/gcloud"
	"github.com/gkessh/gkessh/internal/transport"
)

// transportFor builds the transport of every connection to Google from
// gcloud's network settings and the flags that override them; logf hears
// the proxy and client certificate in use.
func transportFor(cfg *gcloud.Config, g globalOptions, env gcloud.LookupEnv, logf func(string, ...any)) (*transport.Transport, error) {
	n, err := cfg.Network()
	if err != nil {
		return nil, err
	}
	return transport.New(transport.Options{
		Network:         n,
		Env:             env,
		ComputeEndpoint: g.ComputeEndpoint,
		ComputeOrigin:   cmp.Or(g.ComputeOrigin, "--compute-endpoint"),
		RelayEndpoint:   g.IAPEndpoint,
		RelayOrigin:     cmp.Or(g.IAPOrigin, "--iap-tunnel-url-override"),
		InsecureRelay:   g.InsecureIAP,
		Logf:            logf,
	})
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
