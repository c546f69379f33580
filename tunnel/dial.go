// Package tunnel is an IAP TCP-forwarding client: Dialer.DialContext opens
// a net.Conn to a port of a Compute Engine VM through Google's relay, over
// the relay v4 websocket protocol that gcloud's start-iap-tunnel speaks, and
// resumes it without loss when the websocket breaks. The protocol engine it
// runs on (internal/iap) is shared with the emulator's relay.
package tunnel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/oauth2"

	"github.com/gkessh/gkessh/internal/ctxtoken"
	"github.com/gkessh/gkessh/internal/iap"
)

const (
	// DefaultEndpoint is Google's relay.
	DefaultEndpoint = "wss://tunnel.cloudproxy.app"
)

// Target is a VM port to tunnel to. It is also the tunnel's net.Addr.
type Target struct {
	Project   string
	Zone      string
	Instance  string
	Interface string // network interface; "nic0" when empty
	Port      int
}

// Network implements net.Addr.
func (t Target) Network() string { return "iap" }

// String is PROJECT/ZONE/INSTANCE:PORT.
func (t Target) String() string {
	return fmt.Sprintf("%s/%s/%s:%d", t.Project, t.Zone, t.Instance, t.Port)
}

func (t Target) iface() string {
	if t.Interface == "" {
		return "nic0"
	}
	return t.Interface
}

// Dialer opens tunnels. Its fields must not change while it is in use.
type Dialer struct {
	// Endpoint is the relay's base URL, DefaultEndpoint when empty, e.g.
	// "ws://127.0.0.1:8080" for the emulator. As with gcloud's
	// --iap-tunnel-url-override, a path replaces the "/v4" root.
	Endpoint string
	// TokenSource gives the OAuth2 access token, asked on every connect and
	// reconnect; wrap it in oauth2.ReuseTokenSource to cache tokens. When it
	// has an Invalidate(*oauth2.Token) method (auth.Source), a token the
	// relay refuses is dropped and the relay asked once more with a new one.
	// When it has a TokenContext(ctx) method (auth.Source), the dial's ctx
	// bounds the wait for a token.
	TokenSource oauth2.TokenSource
	// UserAgent names the client, e.g. "gkessh/v1.2.3".
	UserAgent string
	// WS dials the websockets. Nil means one with big buffers, frames sent
	// in bursts (iap.BatchConn), the environment's HTTPS proxy and a 30 s
	// handshake timeout. A WS with zero buffer sizes, handshake timeout or
	// subprotocols gets those defaults, and what its NetDialContext dials
	// carries frames in bursts too.
	WS *websocket.Dialer
	// Header is added to every websocket handshake, such as
	// X-Goog-Request-Reason.
	Header http.Header
	// Logf, when set, hears about broken websockets and reconnects.
	Logf func(format string, args ...any)
	// Light sizes the tunnels for short sessions among many, as a fleet's
	// are: a websocket read buffer of 32 KiB instead of 256 KiB. The big
	// one lets one bulk transfer read many frames per system call; a fleet
	// of N tunnels that move a few KiB each would allocate and clear N of
	// them, half of what a fleet run allocates.
	Light bool
	// Throttled, when set, hears of each wait for the relay's HTTP 429
	// before the dial tries again, from any goroutine dialling: for a
	// summary to say how often and how long the relay held tunnels back.
	Throttled func(wait time.Duration)
	// AckTimeout is how long sent bytes may wait for the relay's ACK
	// before the websocket is taken for dead and the tunnel resumed on a
	// new one; 0 means DefaultAckTimeout, negative never.
	AckTimeout time.Duration
}

// DefaultAckTimeout is Dialer.AckTimeout's default: a relay that went
// silent is noticed by the bytes it leaves unacknowledged, with no
// websocket pings, which IAP may not take.
const DefaultAckTimeout = 30 * time.Second

// defaultAckTimeout is what a zero Dialer.AckTimeout means: DefaultAckTimeout,
// except in test builds (testhooks.go).
var defaultAckTimeout = DefaultAckTimeout

// handshakeTimeout bounds the wait for the relay's first message, as
// gcloud's 60 s does, when the caller's context sets no shorter deadline.
const handshakeTimeout = 60 * time.Second

var defaultWS = &websocket.Dialer{
	Proxy:            http.ProxyFromEnvironment,
	HandshakeTimeout: 30 * time.Second,
	ReadBufferSize:   256 << 10,
	// Data frames are built in the burst buffer; gorilla's own write
	// buffer carries only control frames (ping, close), so keep it small.
	WriteBufferSize: 4 << 10,
	NetDialContext:  dialBatched,
	Subprotocols:    []string{iap.Subprotocol},
}

// dialBatched dials TCP under a BatchConn; TLS, when used, goes on top.
func dialBatched(ctx context.Context, network, addr string) (net.Conn, error) {
	// TCP keepalive probes every 15 s find a peer that is gone for good.
	c, err := (&net.Dialer{KeepAlive: 15 * time.Second}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return iap.BatchConn(c), nil
}

// lightReadBuffer is a Light tunnel's websocket read buffer: two DATA
// frames.
const lightReadBuffer = 32 << 10

func (d *Dialer) ws() *websocket.Dialer {
	if d.WS == nil {
		if !d.Light {
			return defaultWS
		}
		w := *defaultWS
		w.ReadBufferSize = lightReadBuffer
		return &w
	}
	w := *d.WS
	if len(w.Subprotocols) == 0 {
		w.Subprotocols = []string{iap.Subprotocol}
	}
	if w.ReadBufferSize == 0 && w.WriteBufferSize == 0 {
		w.ReadBufferSize, w.WriteBufferSize = defaultWS.ReadBufferSize, defaultWS.WriteBufferSize
	}
	if w.HandshakeTimeout == 0 {
		w.HandshakeTimeout = defaultWS.HandshakeTimeout
	}
	switch dial := w.NetDialContext; {
	case dial == nil && w.NetDial == nil:
		w.NetDialContext = dialBatched
	case dial != nil:
		// A caller's dial (through a proxy, say) carries the frames in
		// bursts too.
		w.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return iap.BatchConn(c), nil
		}
	}
	if d.Light {
		w.ReadBufferSize = lightReadBuffer
	}
	return &w
}

// url builds the relay URL for op ("connect" or "reconnect").
func (d *Dialer) url(op string, q url.Values) (string, error) {
	base := d.Endpoint
	if base == "" {
		base = DefaultEndpoint
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("iap: relay endpoint %q: %w", base, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("iap: relay endpoint %q: want a ws:// or wss:// URL", base)
	}
	root := strings.TrimSuffix(u.Path, "/")
	if root == "" {
		root = "/v4"
	}
	u.Path = root + "/" + op
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func (d *Dialer) connectURL(t Target) (string, error) {
	return d.url("connect", url.Values{
		"project":      {t.Project},
		"zone":         {t.Zone},
		"instance":     {t.Instance},
		"interface":    {t.iface()},
		"port":         {strconv.Itoa(t.Port)},
		"newWebsocket": {"True"},
	})
}

func (d *Dialer) reconnectURL(t Target, sid string, ack uint64) (string, error) {
	return d.url("reconnect", url.Values{
		"sid":          {sid},
		"ack":          {strconv.FormatUint(ack, 10)},
		"zone":         {t.Zone},
		"newWebsocket": {"True"},
	})
}

// open dials the relay at u and reads its first message, which must be a
// want frame. Close codes the relay answers with come back as websocket or
// *CloseError errors; port goes into the latter's advice.
func (d *Dialer) open(ctx context.Context, u string, want uint16, port int) (*websocket.Conn, iap.Frame, error) {
	if d.TokenSource == nil {
		return nil, iap.Frame{}, errors.New("no token source")
	}
	throttled := 0
	for attempt := 0; ; attempt++ {
		tok, err := ctxtoken.Token(ctx, d.TokenSource)
		if err != nil {
			return nil, iap.Frame{}, fmt.Errorf("get access token: %w", err)
		}
		ws, f, err := d.openWith(ctx, u, want, port, tok)
		inv, ok := d.TokenSource.(invalidator)
		if attempt == 0 && ok && refusedToken(err) {
			d.logf("iap: the relay refused the access token; trying once more with a new one")
			inv.Invalidate(tok)
			continue
		}
		var rl *RateLimitError
		if !errors.As(err, &rl) {
			return ws, f, err
		}
		if throttled == rateLimitRetries {
			rl.Retries = throttled
			return nil, iap.Frame{}, rl
		}
		throttled++
		wait := rateLimitWait(throttled, rand.Float64)
		d.logf("iap: the relay throttles new tunnels (HTTP 429); trying again in %v (%d of %d)", wait.Round(time.Millisecond), throttled, rateLimitRetries)
		if d.Throttled != nil {
			d.Throttled(wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			rl.Retries = throttled - 1
			return nil, iap.Frame{}, fmt.Errorf("%w; stopped waiting: %w", rl, ctx.Err())
		}
	}
}

// Backoff on the relay's HTTP 429, IAP's answer when it throttles
// ("implement exponential backoff", cloud.google.com/iap/docs/faq): waits
// double from rateLimitBase up to rateLimitCap, each a random time between
// half the step and all of it, so that many tunnels throttled at once do
// not come back at once. rateLimitRetries of them take 20 to 40 s.
var (
	rateLimitBase    = 250 * time.Millisecond
	rateLimitCap     = 8 * time.Second
	rateLimitRetries = 10
)

// rateLimitWait is the wait before retry n (from 1), with rnd in [0, 1).
func rateLimitWait(n int, rnd func() float64) time.Duration {
	step := rateLimitCap
	if n <= 16 {
		step = min(rateLimitBase<<(n-1), rateLimitCap)
	}
	return step/2 + time.Duration(rnd()*float64(step/2))
}

// invalidator is a token source that can drop a token a server refused.
type invalidator interface{ Invalidate(*oauth2.Token) }

// refusedToken reports whether the relay closed for want of a good token:
// 4033 (an expired or revoked token reads as no permission) or 4004.
func refusedToken(err error) bool {
	var ce *CloseError
	var wce *websocket.CloseError
	return (errors.As(err, &ce) && ce.Code == CodeNotAuthorized) ||
		(errors.As(err, &wce) && wce.Code == CodeReauthenticationRequired)
}

func (d *Dialer) logf(format string, args ...any) {
	if d.Logf != nil {
		d.Logf(format, args...)
	}
}

// openWith is open with tok.
func (d *Dialer) openWith(ctx context.Context, u string, want uint16, port int, tok *oauth2.Token) (*websocket.Conn, iap.Frame, error) {
	h := d.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Authorization", tok.Type()+" "+tok.AccessToken)
	h.Set("Origin", iap.Origin)
	if d.UserAgent != "" {
		h.Set("User-Agent", d.UserAgent)
	}
	ws, resp, err := d.ws().DialContext(ctx, u, h)
	if err != nil {
		host := u
		if pu, perr := url.Parse(u); perr == nil {
			host = pu.Host
		}
		if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
			return nil, iap.Frame{}, &RateLimitError{Relay: host}
		}
		if resp != nil {
			return nil, iap.Frame{}, fmt.Errorf("relay %s refused the websocket with HTTP %s: check the relay endpoint and any proxy in between", host, resp.Status)
		}
		return nil, iap.Frame{}, fmt.Errorf("connect to relay %s: %w", host, err)
	}
	ws.SetReadLimit(iap.MaxMessage)
	// ctx bounds the wait for the first message as well as the dial.
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	ws.SetReadDeadline(time.Now().Add(handshakeTimeout))
	f, err := readHandshake(ws, want, port)
	if !stop() {
		ws.Close()
		return nil, iap.Frame{}, ctx.Err()
	}
	if err != nil {
		ws.Close()
		return nil, iap.Frame{}, err
	}
	ws.SetReadDeadline(time.Time{})
	return ws, f, nil
}

// readHandshake reads the relay's messages until the want frame, as gcloud
// does: a LONG_CLOSE ends the dial with its close code (and that code's
// hint), unknown tags are skipped, and anything else first is a protocol
// error.
func readHandshake(ws *websocket.Conn, want uint16, port int) (iap.Frame, error) {
	for {
		typ, msg, err := ws.ReadMessage()
		if err != nil {
			return iap.Frame{}, closeErr(iap.ReadError(err), port)
		}
		f, err := iap.ParseFrame(msg)
		switch {
		case typ != websocket.BinaryMessage:
			return iap.Frame{}, &iap.ProtocolError{Code: CodeInvalidWebsocketOpcode, Msg: "text message from relay, want binary"}
		case err != nil:
			return iap.Frame{}, &iap.ProtocolError{Code: CodeInvalidData, Msg: err.Error()}
		case f.Tag == want:
			return f, nil
		case f.Tag == iap.TagLongClose:
			return iap.Frame{}, closeErr(&websocket.CloseError{Code: int(f.Code), Text: f.Reason}, port)
		case !iap.KnownTag(f.Tag):
			continue
		}
		return iap.Frame{}, &iap.ProtocolError{Code: CodeInvalidTag, Msg: fmt.Sprintf("relay sent frame %#04x first, want %#04x", f.Tag, want)}
	}
}
