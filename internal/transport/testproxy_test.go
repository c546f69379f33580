package transport

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
)

// testProxy is a proxy server for tests: HTTP CONNECT, SOCKS4(a) or SOCKS5,
// with optional credentials. It records each target asked for and, when
// allowed, relays to it. Real proxies (tinyproxy, microsocks) are the
// end-to-end tests' business.
type testProxy struct {
	kind, user, pass string
	ln               net.Listener
	mu               sync.Mutex
	asked            []string // targets, as the client named them
	refuse           bool     // answer every request with a refusal
	status           string   // when set, the answer to every CONNECT
}

func startTestProxy(t *testing.T, kind, user, pass string) *testProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &testProxy{kind: kind, user: user, pass: pass, ln: ln}
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
			go func() {
				defer wg.Done()
				defer c.Close()
				p.serve(c)
			}()
		}
	}()
	return p
}

func (p *testProxy) addr() string { return p.ln.Addr().String() }

func (p *testProxy) targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.asked...)
}

func (p *testProxy) serve(c net.Conn) {
	br := bufio.NewReader(c)
	var target string
	var ok bool
	switch p.kind {
	case "http":
		target, ok = p.httpConnect(br, c)
	case "socks5":
		target, ok = p.socks5(br, c)
	case "socks4":
		target, ok = p.socks4(br, c)
	}
	if !ok {
		return
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { io.Copy(up, br); up.(*net.TCPConn).CloseWrite() }()
	io.Copy(c, up)
}

func (p *testProxy) record(target string) {
	p.mu.Lock()
	p.asked = append(p.asked, target)
	p.mu.Unlock()
}

func (p *testProxy) httpConnect(br *bufio.Reader, c net.Conn) (string, bool) {
	req, err := http.ReadRequest(br)
	if err != nil || req.Method != http.MethodConnect {
		return "", false
	}
	p.record(req.Host)
	if p.user != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.pass))
		if req.Header.Get("Proxy-Authorization") != want {
			io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n")
			return "", false
		}
	}
	if p.refuse {
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
		return "", false
	}
	if p.status != "" {
		io.WriteString(c, "HTTP/1.1 "+p.status+"\r\nContent-Length: 0\r\n\r\n")
		return "", false
	}
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	return req.Host, true
}

func (p *testProxy) socks5(br *bufio.Reader, c net.Conn) (string, bool) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return "", false
	}
	methods := make([]byte, h[1])
	io.ReadFull(br, methods)
	want := byte(0)
	if p.user != "" {
		want = 2
	}
	offered := false
	for _, m := range methods {
		offered = offered || m == want
	}
	if !offered {
		c.Write([]byte{5, 0xff})
		return "", false
	}
	c.Write([]byte{5, want})
	if want == 2 {
		var v [2]byte
		io.ReadFull(br, v[:])
		u := make([]byte, v[1])
		io.ReadFull(br, u)
		var l [1]byte
		io.ReadFull(br, l[:])
		pw := make([]byte, l[0])
		io.ReadFull(br, pw)
		if string(u) != p.user || string(pw) != p.pass {
			c.Write([]byte{1, 1})
			return "", false
		}
		c.Write([]byte{1, 0})
	}
	var r [4]byte
	io.ReadFull(br, r[:])
	var host string
	switch r[3] {
	case 1:
		ip := make([]byte, 4)
		io.ReadFull(br, ip)
		host = net.IP(ip).String()
	case 4:
		ip := make([]byte, 16)
		io.ReadFull(br, ip)
		host = net.IP(ip).String()
	case 3:
		var l [1]byte
		io.ReadFull(br, l[:])
		name := make([]byte, l[0])
		io.ReadFull(br, name)
		host = string(name)
	}
	var port [2]byte
	io.ReadFull(br, port[:])
	target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:]))))
	p.record(target)
	if p.refuse {
		c.Write([]byte{5, 2, 0, 1, 0, 0, 0, 0, 0, 0})
		return "", false
	}
	c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
	return target, true
}

func (p *testProxy) socks4(br *bufio.Reader, c net.Conn) (string, bool) {
	var h [8]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return "", false
	}
	user, _ := br.ReadString(0)
	host := net.IP(h[4:8]).String()
	if h[4] == 0 && h[5] == 0 && h[6] == 0 && h[7] != 0 {
		name, _ := br.ReadString(0)
		host = name[:len(name)-1]
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(h[2:4]))))
	p.record(target)
	if p.refuse || (p.user != "" && user[:len(user)-1] != p.user) {
		c.Write([]byte{0, 91, 0, 0, 0, 0, 0, 0})
		return "", false
	}
	c.Write([]byte{0, 90, 0, 0, 0, 0, 0, 0})
	return target, true
}
