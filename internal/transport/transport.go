// Package transport builds every connection gkessh makes to Google from
// gcloud's network settings, in one place: the HTTP client of the APIs
// and OAuth, and the websocket dialer of the IAP relay. It applies the
// proxy (gcloud's proxy/* properties, else HTTPS_PROXY and NO_PROXY; HTTP
// CONNECT, SOCKS4 or SOCKS5), the CA file (core/custom_ca_certs_file),
// the client certificate of certificate-based access (context_aware/*),
// the endpoint of each API (overrides, universe domain, mTLS hosts) and
// the headers gcloud adds (core/request_reason, billing/quota_project).
// With none of these set it adds nothing: direct connections, the
// system's roots, Google's endpoints.
package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/gkessh/gkessh/internal/gcloud"
)

// Options are what New builds from.
type Options struct {
	// Network is gcloud's settings; nil means none set.
	Network *gcloud.Network
	// Env looks up HTTPS_PROXY, NO_PROXY and SSL_CERT_FILE; nil means
	// os.LookupEnv.
	Env gcloud.LookupEnv
	// ComputeEndpoint, when set, replaces the Compute API's endpoint
	// (a flag); ComputeOrigin names it for doctor.
	ComputeEndpoint, ComputeOrigin string
	// RelayEndpoint, when set, replaces the relay's (gcloud's
	// --iap-tunnel-url-override); RelayOrigin names it.
	RelayEndpoint, RelayOrigin string
	// InsecureRelay skips verifying the relay's certificate (gcloud's
	// --iap-tunnel-insecure-disable-websocket-cert-check): the only way to.
	InsecureRelay bool
	// Logf, when set, hears the proxy and client certificate in use.
	Logf func(format string, args ...any)
}

// Transport holds the connections' settings. Build it with New; it is
// safe for concurrent use. Close stops what it started (an ECP signer).
type Transport struct {
	net   *gcloud.Network
	env   gcloud.LookupEnv
	proxy *proxy // nil: direct
	// roots loads the CA file's pool on first use (nil: the system's):
	// a connection that speaks no TLS, such as a warm ProxyCommand's to
	// an emulator's ws:// relay, never pays for parsing it.
	roots  func() (*x509.CertPool, error)
	cert   *certSource // nil: no client certificate
	opts   Options
	logf   func(string, ...any)
	base   *http.Transport
	api    *http.Client
	oauth  *http.Client
	header http.Header // on API calls
	asked  atomic.Bool // a server asked for a client certificate and got none
}

// New checks the settings and builds the transport. It reads the
// certificate configuration when certificate-based access is on, and
// nothing else (the CA file at the first TLS connection); it connects
// nowhere and starts nothing.
func New(o Options) (*Transport, error) {
	if o.Network == nil {
		o.Network = &gcloud.Network{Universe: gcloud.Setting{Value: gcloud.DefaultUniverse}}
	}
	if o.Env == nil {
		o.Env = os.LookupEnv
	}
	t := &Transport{net: o.Network, env: o.Env, opts: o, logf: o.Logf}
	if t.logf == nil {
		t.logf = func(string, ...any) {}
	}
	n := o.Network
	var err error
	if n.Proxy != nil {
		t.proxy = propertyProxy(n.Proxy)
	} else if t.proxy, err = envProxy(o.Env); err != nil {
		return nil, err
	}
	if t.proxy != nil {
		t.logf("transport: proxy %s (%s)", t.proxy, t.proxy.origin)
	}
	t.roots = func() (*x509.CertPool, error) { return nil, nil }
	if f := n.CAFile; f.Value != "" {
		t.roots = sync.OnceValues(func() (*x509.CertPool, error) { return loadCAFile(f) })
	}
	if n.ClientCert {
		if t.cert, err = findCertSource(n); err != nil {
			return nil, err
		}
		t.logf("transport: client certificate from %s", t.cert.desc)
	}
	t.header = http.Header{}
	if r := n.RequestReason.Value; r != "" {
		t.header.Set("X-Goog-Request-Reason", r)
	}
	oauthHeader := t.header.Clone()
	if q := quotaProject(n.QuotaProject.Value); q != "" {
		t.header.Set("X-Goog-User-Project", q)
	}
	// Go's DefaultTransport's settings, built rather than cloned: Clone
	// sets up HTTP/2 at once, which every process (a warm ProxyCommand
	// making no API call) would pay for; this way the first request does.
	dial := t.dialer(30 * time.Second) // the proxy dials itself: no Proxy func
	t.base = &http.Transport{
		DialContext:       dial,
		DialTLSContext:    t.dialTLS(dial, 10*time.Second),
		ForceAttemptHTTP2: true,
		MaxIdleConns:      100,
		// A fleet command makes up to its parallelism of calls at once
		// (host keys, 32 by default); over HTTP/1.1 (a plain-http
		// endpoint, a proxy that speaks no HTTP/2) Go's default of 2 idle
		// connections per host opens a new one for nearly every call.
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	rt := unreachableRT{refusalRT{t.base, &t.asked}, t}
	t.api = &http.Client{Transport: withHeader(rt, t.header)}
	t.oauth = &http.Client{Transport: withHeader(rt, oauthHeader)}
	return t, nil
}

// quotaProject is billing/quota_project as the project to bill: gcloud's
// CURRENT_PROJECT and LEGACY modes are not project names, and leave the
// header off.
func quotaProject(v string) string {
	switch v {
	case "CURRENT_PROJECT", "CURRENT_PROJECT_WITH_FALLBACK", "LEGACY":
		return ""
	}
	return v
}

// HTTPClient sends API calls: the proxy, CA file, client certificate and
// gcloud's headers (X-Goog-Request-Reason, X-Goog-User-Project).
func (t *Transport) HTTPClient() *http.Client { return t.api }

// OAuthClient fetches tokens (OAuth, IAM Credentials, the metadata
// server): the same connections, without the quota project header.
func (t *Transport) OAuthClient() *http.Client { return t.oauth }

// WSDialer returns the relay's websocket dialer: its network dial goes
// through the proxy and its TLS uses the CA file and client certificate
// (verification off only with InsecureRelay), its websockets resuming one
// another's TLS sessions. Only those fields are set:
// the relay client adds its own buffers and protocol. The CA file is read
// here when the relay speaks TLS.
func (t *Transport) WSDialer() (*websocket.Dialer, error) {
	w := &websocket.Dialer{NetDialContext: t.relayDial(t.dialer(relayKeepAlive))}
	if u, err := url.Parse(t.Relay().URL); err == nil && (u.Scheme == "ws" || u.Scheme == "http") {
		return w, nil
	}
	cfg, err := t.tlsConfig()
	if err != nil {
		return nil, err
	}
	cfg.InsecureSkipVerify = t.opts.InsecureRelay
	// The dialer's tunnels resume one another's TLS sessions: a fleet
	// opens one per node, and a full handshake verifies the relay's
	// certificate chain each time.
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	w.TLSClientConfig = cfg
	return w, nil
}

// relayKeepAlive is the relay connection's TCP keepalive period: probes
// every 15 s find a peer that is gone for good (tunnel's own default).
const relayKeepAlive = 15 * time.Second

// RelayHeader is what the relay's handshake carries besides the token:
// gcloud sends X-Goog-Request-Reason there too.
func (t *Transport) RelayHeader() http.Header {
	h := http.Header{}
	if r := t.net.RequestReason.Value; r != "" {
		h.Set("X-Goog-Request-Reason", r)
	}
	return h
}

// tlsConfig is the TLS every connection uses: the CA file's roots when set
// (which replace the system's, as in gcloud), and the client certificate
// when certificate-based access is on.
func (t *Transport) tlsConfig() (*tls.Config, error) {
	roots, err := t.roots()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{RootCAs: roots}
	cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if t.cert == nil {
			t.asked.Store(true)
			return &tls.Certificate{}, nil
		}
		return t.cert.get(cri.Context())
	}
	return cfg, nil
}

// loadCAFile reads core/custom_ca_certs_file's pool.
func loadCAFile(f gcloud.Setting) (*x509.CertPool, error) {
	pem, err := os.ReadFile(f.Value)
	if err != nil {
		return nil, fmt.Errorf("transport: core/custom_ca_certs_file (%s): %w", f.Source, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("transport: core/custom_ca_certs_file %s (%s) holds no PEM certificate", f.Value, f.Source)
	}
	return pool, nil
}

// dialTLS returns the API client's TLS dial: dial, then the handshake
// within timeout, offering HTTP/2. Building the TLS configuration here,
// not in New, reads the CA file only once a TLS connection is made.
func (t *Transport) dialTLS(dial func(ctx context.Context, network, addr string) (net.Conn, error), timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		cfg, err := t.tlsConfig()
		if err != nil {
			return nil, err
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		cfg.ServerName, cfg.NextProtos = host, []string{"h2", "http/1.1"}
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		hctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		c := tls.Client(raw, cfg)
		if err := c.HandshakeContext(hctx); err != nil {
			raw.Close()
			return nil, err
		}
		return c, nil
	}
}

// dialer returns a dial function: direct (with TCP keepalives), or
// through the proxy unless NO_PROXY skips it. Its errors reaching or
// through the proxy are *ProxyError.
func (t *Transport) dialer(keepAlive time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}
	if t.proxy == nil {
		return d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if t.proxy.bypass(addr) {
			return d.DialContext(ctx, network, addr)
		}
		return t.proxy.dial(ctx, d, addr)
	}
}

// MTLS reports whether certificate-based access is on, so that the mTLS
// endpoints are used.
func (t *Transport) MTLS() bool { return t.cert != nil }

// Endpoint is where api is served: an override, else its host under the
// universe domain (its mTLS host with a client certificate).
func (t *Transport) Endpoint(api API) Endpoint {
	if api == Compute && t.opts.ComputeEndpoint != "" {
		return Endpoint{URL: joinOverride(t.opts.ComputeEndpoint, api), Source: t.opts.ComputeOrigin}
	}
	return endpoint(t.net, api, t.MTLS())
}

// Relay is the IAP relay's base URL.
func (t *Transport) Relay() Endpoint {
	if t.opts.RelayEndpoint != "" {
		return Endpoint{URL: t.opts.RelayEndpoint, Source: t.opts.RelayOrigin}
	}
	return relayEndpoint(t.net, t.MTLS())
}

// Universe is core/universe_domain.
func (t *Transport) Universe() gcloud.Setting { return t.net.Universe }

// TokenHost is auth/token_host when it is set: it replaces the token
// endpoint of every credential, as in gcloud; "" leaves the credentials'
// own. UserTokenHost is the endpoint for user credentials: auth/token_host,
// or auth/mtls_token_host under certificate-based access (gcloud's
// GetTokenUri); "" when neither applies.
func (t *Transport) TokenHost() (all, user string) {
	if t.net.TokenHost.Set() {
		all = t.net.TokenHost.Value
	}
	user = all
	if t.MTLS() {
		user = t.net.MTLSTokenHost.Value
	}
	return all, user
}

// Close stops the ECP signer, if one was started.
func (t *Transport) Close() error {
	if t.cert == nil {
		return nil
	}
	return t.cert.close()
}

// withHeader adds h to every request that does not set those headers.
func withHeader(rt http.RoundTripper, h http.Header) http.RoundTripper {
	if len(h) == 0 {
		return rt
	}
	return headerRT{rt, h}
}

type headerRT struct {
	rt http.RoundTripper
	h  http.Header
}

func (h headerRT) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range h.h {
		if req.Header.Get(k) == "" {
			req.Header[k] = v
		}
	}
	return h.rt.RoundTrip(req)
}

// Proxy names the proxy connections go through, without its password,
// and where it is set; "" when they are direct.
func (t *Transport) Proxy() (proxy, origin string) {
	if t.proxy == nil {
		return "", ""
	}
	name := t.proxy.String()
	if t.proxy.user != "" {
		name += " as " + t.proxy.user
	}
	if t.proxy.noProxy != "" {
		name += ", not for " + t.proxy.noProxy
	}
	return name, t.proxy.origin
}

// Roots says which CAs verify servers, and where that is set; the error is
// a CA file that cannot be read or holds no certificate.
func (t *Transport) Roots() (what, origin string, err error) {
	if f := t.net.CAFile; f.Value != "" {
		_, err := t.roots()
		return "the CA file " + f.Value, "core/custom_ca_certs_file (" + f.Source + ")", err
	}
	if f, ok := t.env("SSL_CERT_FILE"); ok && f != "" && sslCertFileRead {
		return "the system's roots, from " + f, "SSL_CERT_FILE", nil
	}
	return "the system's roots", "", nil
}

// ClientCertificate loads the client certificate of certificate-based
// access and returns it with where it comes from; nil when the access is
// off. Its error is a *ClientCertError.
func (t *Transport) ClientCertificate(ctx context.Context) (*x509.Certificate, string, error) {
	if t.cert == nil {
		return nil, "", nil
	}
	if _, err := t.cert.get(ctx); err != nil {
		return nil, t.cert.desc, err
	}
	t.cert.mu.Lock()
	defer t.cert.mu.Unlock()
	return t.cert.leaf, t.cert.desc, nil
}

// Headers are the headers gcloud's settings add, by name, with their
// settings.
func (t *Transport) Headers() map[string]gcloud.Setting {
	h := map[string]gcloud.Setting{}
	if r := t.net.RequestReason; r.Value != "" {
		h["X-Goog-Request-Reason"] = gcloud.Setting{Value: r.Value, Source: "core/request_reason (" + r.Source + ")"}
	}
	if q := t.net.QuotaProject; quotaProject(q.Value) != "" {
		h["X-Goog-User-Project"] = gcloud.Setting{Value: q.Value, Source: "billing/quota_project (" + q.Source + ")"}
	}
	return h
}
