package gcloud

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Setting is one property's value and where it came from.
type Setting struct {
	Value string
	// Source is the environment variable or configuration that set it,
	// "" when it is gcloud's default.
	Source string
}

// Set reports whether the setting was given rather than defaulted.
func (s Setting) Set() bool { return s.Source != "" }

// Setting returns section/name with its source, or def (and no source)
// when it is unset.
func (c *Config) Setting(section, name, def string) Setting {
	if src := c.Source(section, name); src != "" {
		return Setting{Value: c.Get(section, name), Source: src}
	}
	return Setting{Value: def}
}

// Bool reads section/name as gcloud's GetBool does: 1, true, on, yes and y
// (any case) are true; anything else, or unset, is def.
func (c *Config) Bool(section, name string, def bool) (bool, Setting) {
	s := c.Setting(section, name, "")
	if !s.Set() {
		return def, s
	}
	switch strings.ToLower(s.Value) {
	case "1", "true", "on", "yes", "y":
		return true, s
	case "", "none":
		return def, s
	}
	return false, s
}

// Proxy is the proxy gcloud's proxy/* properties name.
type Proxy struct {
	Type     string // socks4, socks5, http or http_no_tunnel
	Address  string // host name or IP address
	Port     int
	Username string
	Password string // secret: never in messages
	// RDNS has the proxy resolve host names (gcloud's default); else they
	// are resolved here first (SOCKS only).
	RDNS bool
	// Source says where proxy/type came from.
	Source string
}

// ProxyTypes are the values proxy/type takes, as gcloud lists them.
var ProxyTypes = []string{"http", "http_no_tunnel", "socks4", "socks5"}

// Network is gcloud's settings for how to reach Google: the proxy, the CA
// file, certificate-based access, the universe and per-API endpoints, and
// the headers it adds. Only gcloud's properties are read here; the
// environment's HTTPS_PROXY is the transport's business.
type Network struct {
	// Proxy is nil when no proxy/* property is set.
	Proxy *Proxy
	// CAFile is core/custom_ca_certs_file.
	CAFile Setting
	// ClientCert is context_aware/use_client_certificate.
	ClientCert bool
	// ClientCertSource says where it was set ("" when not).
	ClientCertSource string
	// CertConfigFile is context_aware/certificate_config_file_path, by
	// default certificate_config.json in gcloud's directory.
	CertConfigFile Setting
	// AutoDiscoveryFile is context_aware/auto_discovery_file_path, by
	// default ~/.secureConnect/context_aware_metadata.json.
	AutoDiscoveryFile Setting
	// Universe is core/universe_domain, googleapis.com by default.
	Universe Setting
	// Endpoints are the api_endpoint_overrides/API properties that are
	// set, by API name (compute, oslogin, ...).
	Endpoints map[string]Setting
	// TokenHost is auth/token_host; MTLSTokenHost auth/mtls_token_host.
	TokenHost, MTLSTokenHost Setting
	// RequestReason is core/request_reason.
	RequestReason Setting
	// QuotaProject is billing/quota_project.
	QuotaProject Setting
}

// Defaults gcloud ships (core/properties.py).
const (
	DefaultUniverse      = "googleapis.com"
	DefaultTokenHost     = "https://oauth2.googleapis.com/token"
	DefaultMTLSTokenHost = "https://oauth2.mtls.googleapis.com/token"
)

// EndpointAPIs are the APIs whose api_endpoint_overrides Network reads:
// the ones gkessh calls.
var EndpointAPIs = []string{"compute", "oslogin", "iamcredentials", "cloudresourcemanager", "iam", "iap"}

// endpointOverride is gcloud's check of api_endpoint_overrides values
// (_VALID_ENDPOINT_OVERRIDE_REGEX): http or https, a host, and a path
// ending in "/".
var endpointOverride = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)^https?://(?:[A-Z0-9][A-Z0-9-.]+|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[?[A-F0-9]*:[A-F0-9:]+\]?)(?::\d+)?(?:/|[/?]\S+/)$`)
})

// Network reads the network settings, refusing what gcloud refuses: some
// but not all of proxy/type, proxy/address and proxy/port, an unknown
// proxy type or a port that is not a number, an endpoint override that is
// not an http(s) URL ending in "/", and a CA file that is not an absolute
// path to a file.
func (c *Config) Network() (*Network, error) {
	n := &Network{
		CAFile:        c.Setting("core", "custom_ca_certs_file", ""),
		Universe:      c.Setting("core", "universe_domain", DefaultUniverse),
		TokenHost:     c.Setting("auth", "token_host", DefaultTokenHost),
		MTLSTokenHost: c.Setting("auth", "mtls_token_host", DefaultMTLSTokenHost),
		RequestReason: c.Setting("core", "request_reason", ""),
		QuotaProject:  c.Setting("billing", "quota_project", ""),
	}
	var err error
	if n.Proxy, err = c.proxy(); err != nil {
		return nil, err
	}
	if f := n.CAFile; f.Value != "" {
		if !filepath.IsAbs(f.Value) {
			return nil, fmt.Errorf("gcloud: core/custom_ca_certs_file %q (%s): the path must be absolute", f.Value, f.Source)
		}
		if st, err := os.Stat(f.Value); err != nil || st.IsDir() {
			return nil, fmt.Errorf("gcloud: core/custom_ca_certs_file %q (%s): the file must exist", f.Value, f.Source)
		}
	}
	if n.Universe.Value == "" {
		n.Universe.Value = DefaultUniverse
	}
	var s Setting
	n.ClientCert, s = c.Bool("context_aware", "use_client_certificate", false)
	n.ClientCertSource = s.Source
	n.CertConfigFile = c.Setting("context_aware", "certificate_config_file_path", filepath.Join(c.Dir, "certificate_config.json"))
	home, _ := c.env(homeVar)
	n.AutoDiscoveryFile = c.Setting("context_aware", "auto_discovery_file_path", filepath.Join(home, ".secureConnect", "context_aware_metadata.json"))
	for _, api := range EndpointAPIs {
		s := c.Setting("api_endpoint_overrides", api, "")
		if s.Value == "" {
			continue
		}
		if !endpointOverride().MatchString(s.Value) {
			return nil, fmt.Errorf("gcloud: api_endpoint_overrides/%s %q (%s) must be an absolute URI beginning with http:// or https:// and ending with a trailing '/'", api, s.Value, s.Source)
		}
		if n.Endpoints == nil {
			n.Endpoints = map[string]Setting{}
		}
		n.Endpoints[api] = s
	}
	return n, nil
}

// proxy reads proxy/*, as gcloud's http_proxy.GetProxyProperties does.
func (c *Config) proxy() (*Proxy, error) {
	typ := c.Setting("proxy", "type", "")
	addr := c.Setting("proxy", "address", "")
	port := c.Setting("proxy", "port", "")
	set := 0
	for _, s := range []Setting{typ, addr, port} {
		if s.Value != "" {
			set++
		}
	}
	if set == 0 {
		return nil, nil
	}
	if set != 3 {
		return nil, fmt.Errorf("gcloud: set all or none of the properties proxy/type, proxy/address and proxy/port (type %q, address %q, port %q)", typ.Value, addr.Value, port.Value)
	}
	known := false
	for _, t := range ProxyTypes {
		known = known || typ.Value == t
	}
	if !known {
		return nil, fmt.Errorf("gcloud: proxy/type %q (%s) is not valid: want one of %s", typ.Value, typ.Source, strings.Join(ProxyTypes, ", "))
	}
	p, err := strconv.Atoi(port.Value)
	if err != nil || p < 1 || p > 65535 {
		return nil, fmt.Errorf("gcloud: proxy/port %q (%s) is not a port number", port.Value, port.Source)
	}
	rdns, _ := c.Bool("proxy", "rdns", true)
	return &Proxy{
		Type:     typ.Value,
		Address:  addr.Value,
		Port:     p,
		Username: c.Get("proxy", "username"),
		Password: c.Get("proxy", "password"),
		RDNS:     rdns,
		Source:   typ.Source,
	}, nil
}
