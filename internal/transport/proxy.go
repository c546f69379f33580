package transport

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gkessh/gkessh/internal/gcloud"
)

// proxy is where every connection goes first, when one is configured.
type proxy struct {
	kind       string // "http", "socks4" or "socks5"
	addr       string // host:port
	user, pass string // pass is secret: never in messages
	// remoteDNS has the proxy resolve names (SOCKS; an HTTP proxy always
	// does).
	remoteDNS bool
	// origin says where it is configured, for messages.
	origin string
	// noProxy is NO_PROXY's list, for a proxy from the environment;
	// gcloud's proxy/* properties apply to every host.
	noProxy string
}

// String names the proxy without its credentials, in the scheme that
// says where names are resolved (socks5h, socks4a: at the proxy), as
// gcloud's requests names it and HTTPS_PROXY spells it.
func (p *proxy) String() string {
	scheme := p.kind
	switch {
	case p.remoteDNS && p.kind == "socks5":
		scheme = "socks5h"
	case p.remoteDNS && p.kind == "socks4":
		scheme = "socks4a"
	}
	return scheme + "://" + p.addr
}

// propertyProxy is the proxy gcloud's proxy/* properties name. As in gcloud
// (http_proxy_types.py), http_no_tunnel is http for HTTPS, which is all
// gkessh speaks to Google; socks4 and socks5 resolve names at the proxy
// (socks4a, socks5h) unless proxy/rdns is false.
func propertyProxy(p *gcloud.Proxy) *proxy {
	kind := p.Type
	if kind == "http_no_tunnel" {
		kind = "http"
	}
	return &proxy{
		kind:      kind,
		addr:      net.JoinHostPort(p.Address, strconv.Itoa(p.Port)),
		user:      p.Username,
		pass:      p.Password,
		remoteDNS: p.RDNS,
		origin:    "proxy/type, proxy/address, proxy/port (" + p.Source + ")",
	}
}

// envProxy is the proxy the environment names for HTTPS, read as Python's
// urllib reads it for gcloud: https_proxy, else HTTPS_PROXY (an empty
// https_proxy means none), likewise no_proxy and NO_PROXY. It is nil when
// neither is set.
func envProxy(env gcloud.LookupEnv) (*proxy, error) {
	raw, name := lookupPair(env, "https_proxy")
	if raw == "" {
		return nil, nil
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("transport: %s is not a proxy URL", name)
	}
	p := &proxy{origin: name}
	p.noProxy, _ = lookupPair(env, "no_proxy")
	port := "1080"
	switch u.Scheme {
	case "http":
		p.kind, port = "http", "80"
	case "socks5", "socks5h":
		p.kind, p.remoteDNS = "socks5", u.Scheme == "socks5h"
	case "socks4", "socks4a":
		p.kind, p.remoteDNS = "socks4", u.Scheme == "socks4a"
	case "https":
		return nil, fmt.Errorf("transport: %s=https://%s: the proxy is spoken to in plain HTTP (CONNECT); set %s=http://%s", name, u.Host, name, u.Host)
	default:
		return nil, fmt.Errorf("transport: %s: proxy scheme %q: want http, socks4, socks4a, socks5 or socks5h", name, u.Scheme)
	}
	if u.Port() == "" {
		p.addr = net.JoinHostPort(u.Hostname(), port)
	} else {
		p.addr = u.Host
	}
	if u.User != nil {
		p.user = u.User.Username()
		p.pass, _ = u.User.Password()
	}
	return p, nil
}

// lookupPair returns the lowercase variable when it is set (even empty),
// else the uppercase one, with the name read.
func lookupPair(env gcloud.LookupEnv, lower string) (string, string) {
	if v, ok := env(lower); ok {
		return v, lower
	}
	upper := strings.ToUpper(lower)
	v, _ := env(upper)
	return v, upper
}

// bypass reports whether host (host or host:port) skips the proxy under
// NO_PROXY, as Python's proxy_bypass_environment decides: "*" skips all;
// otherwise each comma-separated name, leading dots ignored, matches
// itself and its subdomains, with or without the port.
func (p *proxy) bypass(hostport string) bool {
	if p.noProxy == "" {
		return false
	}
	if strings.TrimSpace(p.noProxy) == "*" {
		return true
	}
	hostport = strings.ToLower(hostport)
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	for _, name := range strings.Split(p.noProxy, ",") {
		name = strings.ToLower(strings.TrimLeft(strings.TrimSpace(name), "."))
		if name == "" {
			continue
		}
		if host == name || hostport == name || strings.HasSuffix(host, "."+name) || strings.HasSuffix(hostport, "."+name) {
			return true
		}
	}
	return false
}

// ProxyError is a proxy that could not be reached, or that refused to
// connect to a host. It names the proxy and where it is configured, never
// its credentials.
type ProxyError struct {
	Proxy  string // scheme://host:port
	Origin string // the settings or variable that name it
	Target string // the host:port asked for
	// Refusal is the proxy's answer when it refused (an HTTP status, a
	// SOCKS reply), "" when it could not be reached or spoke nonsense.
	Refusal string
	// AuthRequired is a refusal for want of (good) credentials.
	AuthRequired bool
	Err          error
}

func (e *ProxyError) Error() string {
	if e.Refusal != "" {
		return fmt.Sprintf("proxy %s (%s) refused to connect to %s: %s", e.Proxy, e.Origin, e.Target, e.Refusal)
	}
	return fmt.Sprintf("proxy %s (%s), connecting to %s: %v", e.Proxy, e.Origin, e.Target, e.Err)
}

func (e *ProxyError) Unwrap() error { return e.Err }

// dialTimeout bounds a TCP connect, as Go's default HTTP transport does.
const dialTimeout = 30 * time.Second

// dial connects to addr (host:port) through the proxy, reaching the proxy
// with d.
func (p *proxy) dial(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, p.fail(addr, "", err)
	}
	// ctx bounds the handshake with the proxy as well as the dial.
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	conn, err := p.handshake(ctx, c, addr)
	if !stop() {
		err = errors.Join(ctx.Err(), err)
	}
	if err != nil {
		c.Close()
		var pe *ProxyError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, p.fail(addr, "", err)
	}
	c.SetDeadline(time.Time{})
	return conn, nil
}

func (p *proxy) fail(target, refusal string, err error) *ProxyError {
	return &ProxyError{Proxy: p.String(), Origin: p.origin, Target: target, Refusal: refusal, Err: err}
}

// handshake asks the proxy on c for a connection to addr.
func (p *proxy) handshake(ctx context.Context, c net.Conn, addr string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", portText, err)
	}
	switch p.kind {
	case "http":
		return p.connect(c, addr)
	case "socks5":
		return c, p.socks5(ctx, c, host, uint16(port), addr)
	case "socks4":
		return c, p.socks4(ctx, c, host, uint16(port), addr)
	}
	return nil, fmt.Errorf("proxy type %q", p.kind)
}

// connect is HTTP CONNECT, with Basic credentials when there are any.
func (p *proxy) connect(c net.Conn, addr string) (net.Conn, error) {
	req := "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if p.user != "" || p.pass != "" {
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.pass)) + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return nil, fmt.Errorf("read the proxy's answer to CONNECT: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := p.fail(addr, "HTTP "+resp.Status, nil)
		// 407 is the status for it; tinyproxy answers a CONNECT with bad
		// credentials 401, which a proxy has no other reason to send.
		e.AuthRequired = resp.StatusCode == http.StatusProxyAuthRequired || resp.StatusCode == http.StatusUnauthorized
		return nil, e
	}
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// bufferedConn returns what the proxy sent after its answer before
// reading the connection again.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// resolve looks host up here, for a SOCKS proxy told not to (proxy/rdns
// false, socks4:// or socks5://): an IPv4 address when it has one.
func resolve(ctx context.Context, host string) (net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip, nil
	}
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		if ip4 := ip.To4(); ip4 != nil {
			return ip4, nil
		}
	}
	return ips[0], nil
}

// socks5 is RFC 1928's CONNECT, with RFC 1929's username and password
// when there are any.
func (p *proxy) socks5(ctx context.Context, c net.Conn, host string, port uint16, addr string) error {
	methods := []byte{0x00}
	if p.user != "" || p.pass != "" {
		methods = []byte{0x00, 0x02}
	}
	if _, err := c.Write(append([]byte{5, byte(len(methods))}, methods...)); err != nil {
		return err
	}
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil {
		return fmt.Errorf("read the SOCKS5 method: %w", err)
	}
	switch {
	case sel[0] != 5:
		return fmt.Errorf("not a SOCKS5 proxy (version %d)", sel[0])
	case sel[1] == 0x02 && len(methods) == 2:
		if len(p.user) > 255 || len(p.pass) > 255 {
			return errors.New("SOCKS5 user name or password longer than 255 bytes")
		}
		msg := append([]byte{1, byte(len(p.user))}, p.user...)
		msg = append(append(msg, byte(len(p.pass))), p.pass...)
		if _, err := c.Write(msg); err != nil {
			return err
		}
		var st [2]byte
		if _, err := io.ReadFull(c, st[:]); err != nil {
			return fmt.Errorf("read the SOCKS5 authentication status: %w", err)
		}
		if st[1] != 0 {
			e := p.fail(addr, "SOCKS5 user name and password refused", nil)
			e.AuthRequired = true
			return e
		}
	case sel[1] == 0x00:
	default:
		e := p.fail(addr, "SOCKS5 proxy accepts none of the offered authentication methods", nil)
		e.AuthRequired = len(methods) == 1
		return e
	}
	req := []byte{5, 1, 0}
	if p.remoteDNS && net.ParseIP(host) == nil {
		if len(host) > 255 {
			return fmt.Errorf("host name %q is too long for SOCKS5", host)
		}
		req = append(append(req, 3, byte(len(host))), host...)
	} else {
		ip, err := resolve(ctx, host)
		if err != nil {
			return err
		}
		if ip4 := ip.To4(); ip4 != nil {
			req = append(append(req, 1), ip4...)
		} else {
			req = append(append(req, 4), ip.To16()...)
		}
	}
	req = binary.BigEndian.AppendUint16(req, port)
	if _, err := c.Write(req); err != nil {
		return err
	}
	rep, err := readSOCKS5Reply(c)
	if err != nil {
		return err
	}
	if rep != 0 {
		return p.fail(addr, socks5Reply(rep), nil)
	}
	return nil
}

// readSOCKS5Reply reads a SOCKS5 reply to CONNECT and returns its REP.
func readSOCKS5Reply(r io.Reader) (byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, fmt.Errorf("read the SOCKS5 reply: %w", err)
	}
	if h[0] != 5 {
		return 0, fmt.Errorf("SOCKS5 reply version %d", h[0])
	}
	var n int
	switch h[3] {
	case 1:
		n = 4
	case 4:
		n = 16
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return 0, fmt.Errorf("read the SOCKS5 reply: %w", err)
		}
		n = int(l[0])
	default:
		return 0, fmt.Errorf("SOCKS5 reply address type %d", h[3])
	}
	if _, err := io.ReadFull(r, make([]byte, n+2)); err != nil {
		return 0, fmt.Errorf("read the SOCKS5 reply: %w", err)
	}
	return h[1], nil
}

func socks5Reply(rep byte) string {
	msgs := []string{1: "general SOCKS server failure", 2: "connection not allowed by ruleset", 3: "network unreachable",
		4: "host unreachable", 5: "connection refused", 6: "TTL expired", 7: "command not supported", 8: "address type not supported"}
	if int(rep) < len(msgs) {
		return fmt.Sprintf("SOCKS5 reply %d (%s)", rep, msgs[rep])
	}
	return fmt.Sprintf("SOCKS5 reply %d", rep)
}

// socks4 is SOCKS4's CONNECT, or SOCKS4a's when the proxy resolves names.
// The user name goes as the USERID; SOCKS4 has no password.
func (p *proxy) socks4(ctx context.Context, c net.Conn, host string, port uint16, addr string) error {
	req := binary.BigEndian.AppendUint16([]byte{4, 1}, port)
	var name string
	if ip := net.ParseIP(host); ip == nil && p.remoteDNS {
		req = append(req, 0, 0, 0, 1) // 0.0.0.x: the name follows (SOCKS4a)
		name = host
	} else {
		ip, err := resolve(ctx, host)
		if err != nil {
			return err
		}
		if ip.To4() == nil {
			return fmt.Errorf("SOCKS4 cannot reach the IPv6 address %s", ip)
		}
		req = append(req, ip.To4()...)
	}
	req = append(append(req, p.user...), 0)
	if name != "" {
		req = append(append(req, name...), 0)
	}
	if _, err := c.Write(req); err != nil {
		return err
	}
	cd, err := readSOCKS4Reply(c)
	if err != nil {
		return err
	}
	if cd != 90 {
		msgs := map[byte]string{91: "request rejected or failed", 92: "no identd on this machine", 93: "identd user mismatch"}
		return p.fail(addr, fmt.Sprintf("SOCKS4 reply %d (%s)", cd, msgs[cd]), nil)
	}
	return nil
}

// readSOCKS4Reply reads the 8-byte SOCKS4 reply and returns its CD.
func readSOCKS4Reply(r io.Reader) (byte, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, fmt.Errorf("read the SOCKS4 reply: %w", err)
	}
	if b[0] != 0 {
		return 0, fmt.Errorf("SOCKS4 reply version %d", b[0])
	}
	return b[1], nil
}
