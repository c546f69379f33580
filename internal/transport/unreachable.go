package transport

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/gkessh/gkessh/internal/gcloud"
)

// UnreachableError is a connection to an endpoint that failed before any
// reply: nothing listens at its address, its host name does not resolve,
// or no route leads there. It names the endpoint and the setting that
// chose it, so that a stopped emulator or a mistyped override reads as
// such rather than as a socket error inside an API call.
type UnreachableError struct {
	// What is served there: "compute API", "IAP relay"; "" when the
	// address is none of the endpoints.
	What     string
	Endpoint Endpoint
	Err      error // the dial's
}

func (e *UnreachableError) Error() string {
	var b strings.Builder
	b.WriteString("cannot reach ")
	if e.What != "" {
		b.WriteString("the " + e.What + " at ")
	}
	b.WriteString(e.Endpoint.URL)
	if e.Endpoint.Source != "" {
		b.WriteString(" (set by " + e.Endpoint.Source + ")")
	}
	b.WriteString(": " + dialReason(e.Err))
	return b.String()
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// NoSuchHost reports whether the endpoint's host name does not resolve.
func (e *UnreachableError) NoSuchHost() bool {
	var dns *net.DNSError
	return errors.As(e.Err, &dns) && dns.IsNotFound
}

// dialFailed reports whether err ended a connection before it was made,
// for a reason of the endpoint's: not a proxy's (a *ProxyError says more)
// and not the caller giving up.
func dialFailed(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var (
		proxy *ProxyError
		op    *net.OpError
		dns   *net.DNSError
	)
	if errors.As(err, &proxy) {
		return false
	}
	return errors.As(err, &dns) || errors.As(err, &op) && op.Op == "dial"
}

// dialReason is why the dial failed, without the addresses the error
// names: the endpoint's URL says where.
func dialReason(err error) string {
	var (
		dns *net.DNSError
		sys *os.SyscallError
		ne  net.Error
	)
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return "no host is named " + dns.Name
	case errors.As(err, &dns):
		return "looking up " + dns.Name + ": " + dns.Err
	case errors.As(err, &sys):
		return sys.Err.Error()
	case errors.As(err, &ne) && ne.Timeout():
		return "no answer to the connection (timed out)"
	}
	return err.Error()
}

// unreachableRT reports a request whose connection could not be made as
// an *UnreachableError naming the endpoint it was for.
type unreachableRT struct {
	rt http.RoundTripper
	t  *Transport
}

func (u unreachableRT) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := u.rt.RoundTrip(req)
	if dialFailed(req.Context(), err) {
		what, ep := u.t.endpointOf(req.URL)
		err = &UnreachableError{What: what, Endpoint: ep, Err: err}
	}
	return resp, err
}

// endpointOf is the endpoint a request to u is for, and what is served
// there: of the APIs and token endpoints, the one whose URL is the longest
// prefix of u (they can share a host, as on an emulator), else u's origin.
func (t *Transport) endpointOf(u *url.URL) (string, Endpoint) {
	s := u.String()
	what, best := "", Endpoint{URL: u.Scheme + "://" + u.Host + "/"}
	found := 0
	try := func(w string, e Endpoint) {
		if e.URL != "" && strings.HasPrefix(s, e.URL) && len(e.URL) > found {
			what, best, found = w, e, len(e.URL)
		}
	}
	for _, api := range APIs {
		try(string(api)+" API", t.Endpoint(api))
	}
	for _, h := range []struct {
		name string
		gcloud.Setting
	}{{"auth/token_host", t.net.TokenHost}, {"auth/mtls_token_host", t.net.MTLSTokenHost}} {
		e := Endpoint{URL: h.Value}
		if h.Source != "" {
			e.Source = h.name + " (" + h.Source + ")"
		}
		try("OAuth token endpoint", e)
	}
	return what, best
}

// relayDial is dial, reporting a relay connection that could not be made
// as an *UnreachableError naming the relay.
func (t *Transport) relayDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if dialFailed(ctx, err) {
			return nil, &UnreachableError{What: "IAP relay", Endpoint: t.Relay(), Err: err}
		}
		return c, err
	}
}
