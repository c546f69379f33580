package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/gcloud"
)

func envOf(m map[string]string) gcloud.LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEnvProxy(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want *proxy
		err  string
	}{
		{"none", nil, nil, ""},
		{"HTTPS_PROXY", map[string]string{"HTTPS_PROXY": "http://proxy.corp:3128"}, &proxy{kind: "http", addr: "proxy.corp:3128", origin: "HTTPS_PROXY"}, ""},
		{"lowercase wins", map[string]string{"HTTPS_PROXY": "http://a:1", "https_proxy": "http://b:2"}, &proxy{kind: "http", addr: "b:2", origin: "https_proxy"}, ""},
		{"empty lowercase means none", map[string]string{"HTTPS_PROXY": "http://a:1", "https_proxy": ""}, nil, ""},
		{"no scheme, no port", map[string]string{"HTTPS_PROXY": "proxy.corp"}, &proxy{kind: "http", addr: "proxy.corp:80", origin: "HTTPS_PROXY"}, ""},
		{"credentials and NO_PROXY", map[string]string{"HTTPS_PROXY": "http://ann:p%40ss@p:8080", "NO_PROXY": ".corp"},
			&proxy{kind: "http", addr: "p:8080", user: "ann", pass: "p@ss", origin: "HTTPS_PROXY", noProxy: ".corp"}, ""},
		{"socks5h", map[string]string{"HTTPS_PROXY": "socks5h://s"}, &proxy{kind: "socks5", addr: "s:1080", remoteDNS: true, origin: "HTTPS_PROXY"}, ""},
		{"socks4", map[string]string{"HTTPS_PROXY": "socks4://s:9"}, &proxy{kind: "socks4", addr: "s:9", origin: "HTTPS_PROXY"}, ""},
		{"HTTP_PROXY alone is not read", map[string]string{"HTTP_PROXY": "http://a:1"}, nil, ""},
		{"https scheme", map[string]string{"HTTPS_PROXY": "https://ann:s3cret@p:443"}, nil, "HTTPS_PROXY=http://p:443"},
		{"unknown scheme", map[string]string{"HTTPS_PROXY": "ftp://p"}, nil, `"ftp"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := envProxy(envOf(tc.env))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("err = %v, want one with %q and no password", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("envProxy = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestProxyString: a proxy is named in the scheme that says where names
// are resolved, never with its credentials.
func TestProxyString(t *testing.T) {
	for _, tc := range []struct {
		p    proxy
		want string
	}{
		{proxy{kind: "http", addr: "p:3128", user: "ann", pass: "s3cret"}, "http://p:3128"},
		{proxy{kind: "socks5", addr: "s:1080", remoteDNS: true}, "socks5h://s:1080"},
		{proxy{kind: "socks5", addr: "s:1080"}, "socks5://s:1080"},
		{proxy{kind: "socks4", addr: "s:9", remoteDNS: true}, "socks4a://s:9"},
		{proxy{kind: "socks4", addr: "s:9"}, "socks4://s:9"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%+v: String() = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestBypass(t *testing.T) {
	cases := []struct {
		noProxy, host string
		want          bool
	}{
		{"", "compute.googleapis.com:443", false},
		{"*", "compute.googleapis.com:443", true},
		{"googleapis.com", "compute.googleapis.com:443", true},
		{".googleapis.com", "compute.googleapis.com:443", true},
		{"googleapis.com", "googleapis.com:443", true},
		{"apis.com", "compute.googleapis.com:443", false},
		{"corp, tunnel.cloudproxy.app", "tunnel.cloudproxy.app:443", true},
		{"GoogleAPIs.COM", "compute.googleapis.com:443", true},
		{"127.0.0.1:8080", "127.0.0.1:8080", true},
		{"127.0.0.1:8080", "127.0.0.1:9090", false},
		{"localhost", "127.0.0.1:80", false},
	}
	for _, tc := range cases {
		p := &proxy{noProxy: tc.noProxy}
		if got := p.bypass(tc.host); got != tc.want {
			t.Errorf("NO_PROXY=%q, host %s: bypass = %v, want %v", tc.noProxy, tc.host, got, tc.want)
		}
	}
}

// echoServer answers every connection with what it is sent.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// viaProxy is a transport through the proxy at addr, as gcloud's
// properties name it.
func viaProxy(t *testing.T, typ, addr, user, pass string, rdns bool) *Transport {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	tr, err := New(Options{Env: envOf(nil), Network: &gcloud.Network{
		Universe: gcloud.Setting{Value: gcloud.DefaultUniverse},
		Proxy:    &gcloud.Proxy{Type: typ, Address: host, Port: p, Username: user, Password: pass, RDNS: rdns, Source: "test"}}})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func ping(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo = %q, %v", got, err)
	}
}

// TestDialThroughProxy connects to an echo server by name through each
// kind of proxy, with and without credentials, and checks what the proxy
// was asked for: the name itself when the proxy resolves names (rdns),
// else the address resolved here.
func TestDialThroughProxy(t *testing.T) {
	echo := echoServer(t)
	_, port, _ := net.SplitHostPort(echo)
	byName := net.JoinHostPort("localhost", port)
	cases := []struct {
		typ, user, pass string
		rdns            bool
		asked           string
	}{
		{"http", "", "", true, byName},
		{"http", "ann", "s3cret", true, byName},
		{"http_no_tunnel", "", "", true, byName},
		{"socks5", "", "", true, byName},
		{"socks5", "ann", "s3cret", true, byName},
		{"socks5", "", "", false, echo},
		{"socks4", "", "", true, byName},
		{"socks4", "ann", "", false, echo},
	}
	for _, tc := range cases {
		kind := tc.typ
		if kind == "http_no_tunnel" {
			kind = "http"
		}
		t.Run(tc.typ+"/"+tc.user+"/"+strconv.FormatBool(tc.rdns), func(t *testing.T) {
			p := startTestProxy(t, kind, tc.user, tc.pass)
			tr := viaProxy(t, tc.typ, p.addr(), tc.user, tc.pass, tc.rdns)
			c, err := tr.dialer(time.Second)(context.Background(), "tcp", byName)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ping(t, c)
			if got := p.targets(); len(got) != 1 || got[0] != tc.asked {
				t.Errorf("the proxy was asked for %v, want [%s]", got, tc.asked)
			}
		})
	}
}

// TestProxyErrors checks that a proxy that is down, refuses, or wants
// other credentials is reported naming it and where it is set, never with
// its password.
func TestProxyErrors(t *testing.T) {
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := down.Addr().String()
	down.Close()
	cases := []struct {
		name, typ  string
		proxy      func(t *testing.T) string
		user, pass string
		refusal    string
		auth       bool
	}{
		{"down", "http", func(*testing.T) string { return downAddr }, "ann", "s3cret", "", false},
		{"407", "http", func(t *testing.T) string { return startTestProxy(t, "http", "ann", "other").addr() }, "ann", "s3cret", "HTTP 407 Proxy Authentication Required", true},
		{"401, as tinyproxy", "http", func(t *testing.T) string {
			p := startTestProxy(t, "http", "", "")
			p.status = "401 Unauthorized"
			return p.addr()
		}, "", "", "HTTP 401 Unauthorized", true},
		{"403", "http", func(t *testing.T) string { p := startTestProxy(t, "http", "", ""); p.refuse = true; return p.addr() }, "", "", "HTTP 403 Forbidden", false},
		{"socks5 credentials", "socks5", func(t *testing.T) string { return startTestProxy(t, "socks5", "ann", "other").addr() }, "ann", "s3cret", "SOCKS5 user name and password refused", true},
		{"socks5 wants credentials", "socks5", func(t *testing.T) string { return startTestProxy(t, "socks5", "ann", "x").addr() }, "", "", "SOCKS5 proxy accepts none of the offered authentication methods", true},
		{"socks5 ruleset", "socks5", func(t *testing.T) string { p := startTestProxy(t, "socks5", "", ""); p.refuse = true; return p.addr() }, "", "", "SOCKS5 reply 2 (connection not allowed by ruleset)", false},
		{"socks4 rejected", "socks4", func(t *testing.T) string { p := startTestProxy(t, "socks4", "", ""); p.refuse = true; return p.addr() }, "", "", "SOCKS4 reply 91 (request rejected or failed)", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.proxy(t)
			tr := viaProxy(t, tc.typ, addr, tc.user, tc.pass, true)
			_, err := tr.dialer(time.Second)(context.Background(), "tcp", "compute.googleapis.com:443")
			var pe *ProxyError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ProxyError", err)
			}
			if pe.Refusal != tc.refusal || pe.AuthRequired != tc.auth || pe.Target != "compute.googleapis.com:443" {
				t.Errorf("refusal %q auth %v target %q, want %q %v", pe.Refusal, pe.AuthRequired, pe.Target, tc.refusal, tc.auth)
			}
			msg := err.Error()
			if !strings.Contains(msg, addr) || !strings.Contains(msg, "proxy/type, proxy/address, proxy/port (test)") || strings.Contains(msg, "s3cret") {
				t.Errorf("message %q: want the proxy %s and where it is set, and no password", msg, addr)
			}
		})
	}
}

// TestNoProxyBypass dials a host NO_PROXY lists directly, and the others
// through the proxy.
func TestNoProxyBypass(t *testing.T) {
	echo := echoServer(t)
	p := startTestProxy(t, "http", "", "")
	tr, err := New(Options{Env: envOf(map[string]string{"HTTPS_PROXY": "http://" + p.addr(), "NO_PROXY": "127.0.0.1"})})
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(echo)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		c, err := tr.dialer(time.Second)(context.Background(), "tcp", net.JoinHostPort(host, port))
		if err != nil {
			t.Fatal(err)
		}
		ping(t, c)
		c.Close()
	}
	if got := p.targets(); !reflect.DeepEqual(got, []string{"localhost:" + port}) {
		t.Errorf("proxied %v, want only localhost", got)
	}
}

// fuzzConn is a proxy that answers with fixed bytes and swallows writes.
type fuzzConn struct {
	net.Conn
	r io.Reader
}

func (f fuzzConn) Read(p []byte) (int, error)             { return f.r.Read(p) }
func (f fuzzConn) Write(p []byte) (int, error)            { return len(p), nil }
func (f fuzzConn) SetDeadline(time.Time) error            { return nil }
func (f fuzzConn) Close() error                           { return nil }
func (f fuzzConn) RemoteAddr() net.Addr                   { return &net.TCPAddr{} }
func (f fuzzConn) LocalAddr() net.Addr                    { return &net.TCPAddr{} }
func (f fuzzConn) SetReadDeadline(t time.Time) error      { return nil }
func (f fuzzConn) SetWriteDeadline(t time.Time) error     { return nil }
func (f fuzzConn) SetKeepAlive(bool) error                { return nil }
func (f fuzzConn) SetKeepAlivePeriod(time.Duration) error { return nil }

// FuzzProxyReply feeds arbitrary proxy answers to each handshake: none may
// panic, and none may succeed on an answer that is not a success.
func FuzzProxyReply(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add([]byte{5, 0, 5, 0, 0, 1, 1, 2, 3, 4, 0, 80})
	f.Add([]byte{5, 2, 1, 0, 5, 0, 0, 3, 3, 'a', 'b', 'c', 0, 80})
	f.Add([]byte{5, 0, 5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80})
	f.Add([]byte{0, 90, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 91, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, answer []byte) {
		for _, kind := range []string{"http", "socks5", "socks4"} {
			p := &proxy{kind: kind, addr: "p:1", user: "u", pass: "pw", remoteDNS: true}
			_, err := p.handshake(context.Background(), fuzzConn{r: bytes.NewReader(answer)}, "example.com:443")
			if err != nil {
				continue
			}
			ok := map[string]bool{
				"http":   bytes.HasPrefix(answer, []byte("HTTP/")) && len(answer) > 12 && string(answer[9:12]) == "200",
				"socks5": len(answer) >= 2 && answer[0] == 5 && (answer[1] == 0 || (answer[1] == 2 && len(answer) >= 4 && answer[3] == 0)),
				"socks4": len(answer) >= 2 && answer[0] == 0 && answer[1] == 90,
			}[kind]
			if !ok {
				t.Errorf("%s handshake succeeded on %q", kind, answer)
			}
		}
	})
}
