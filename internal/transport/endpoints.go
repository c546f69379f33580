package transport

import (
	"net/url"
	"strings"

	"github.com/gkessh/gkessh/internal/gcloud"
)

// API names a Google API gkessh calls, as gcloud's
// api_endpoint_overrides/API property names it.
type API string

// The APIs gkessh calls.
const (
	Compute         API = "compute"
	OSLogin         API = "oslogin"
	IAMCredentials  API = "iamcredentials"
	ResourceManager API = "cloudresourcemanager"
	IAM             API = "iam"
	IAP             API = "iap"
)

// APIs lists them in the order doctor shows them.
var APIs = []API{Compute, OSLogin, IAMCredentials, ResourceManager, IAM, IAP}

// basePath is the API's path under its host, from gcloud's BASE_URL.
func (a API) basePath() string {
	if a == Compute {
		return "/compute/v1/"
	}
	return "/"
}

// Endpoint is a base URL and what chose it.
type Endpoint struct {
	URL string // ends in "/" for an API
	// Source is the flag, property or variable that set it; "" for
	// Google's default.
	Source string
}

// endpoint is where api is served, as gcloud's _GetEffectiveApiEndpoint
// decides: an override wins; else the API's host under the universe
// domain, its mTLS host (API.mtls.UNIVERSE) when a client certificate is
// in use.
func endpoint(n *gcloud.Network, api API, mtls bool) Endpoint {
	if o, ok := n.Endpoints[string(api)]; ok {
		return Endpoint{URL: joinOverride(o.Value, api), Source: "api_endpoint_overrides/" + string(api) + " (" + o.Source + ")"}
	}
	host := string(api) + "."
	var why []string
	if mtls {
		host += "mtls."
		why = append(why, "context_aware/use_client_certificate ("+n.ClientCertSource+")")
	}
	if n.Universe.Set() {
		why = append(why, "core/universe_domain ("+n.Universe.Source+")")
	}
	return Endpoint{URL: "https://" + host + n.Universe.Value + api.basePath(), Source: strings.Join(why, ", ")}
}

// joinOverride is gcloud's _BuildEndpointOverride: an override that is
// only a host (path "/") gets the API's own path, so
// https://compute-psc.p.googleapis.com/ serves Compute at /compute/v1/.
func joinOverride(override string, api API) string {
	u, err := url.Parse(override)
	if err != nil || u.Path != "/" || api.basePath() == "/" {
		return override
	}
	return u.Scheme + "://" + u.Host + api.basePath()
}

// relayEndpoint is the IAP relay's base URL, as gcloud's
// _CreateWebSocketUrl chooses it: mtls.tunnel.cloudproxy.app with a
// client certificate, tunnel-cloudproxy.UNIVERSE outside Google's
// universe (which has no mTLS host), else tunnel.cloudproxy.app.
func relayEndpoint(n *gcloud.Network, mtls bool) Endpoint {
	switch {
	case n.Universe.Value != gcloud.DefaultUniverse:
		return Endpoint{URL: "wss://tunnel-cloudproxy." + n.Universe.Value, Source: "core/universe_domain (" + n.Universe.Source + ")"}
	case mtls:
		return Endpoint{URL: "wss://mtls.tunnel.cloudproxy.app", Source: "context_aware/use_client_certificate (" + n.ClientCertSource + ")"}
	}
	return Endpoint{URL: "wss://tunnel.cloudproxy.app"}
}
