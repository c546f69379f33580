//go:build unix

package tunnel_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/net/nettest"
	"golang.org/x/oauth2"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/emutest"
	"github.com/gkessh/gkessh/internal/iap"
	"github.com/gkessh/gkessh/internal/testnet"
	"github.com/gkessh/gkessh/tunnel"
)

// relay is an in-process emulator serving the IAP relay, with one node.
type relay struct {
	srv    *emulator.Server
	node   *emulator.Node
	dialer *tunnel.Dialer
}

func newRelay(t testing.TB) *relay {
	t.Helper()
	srv, url := emutest.Serve(t, emulator.Config{Nodes: 1, Logf: t.Logf})
	return &relay{
		srv:  srv,
		node: srv.Node(srv.Nodes()[0]),
		dialer: &tunnel.Dialer{
			Endpoint:    "ws" + strings.TrimPrefix(url, "http"),
			TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: srv.Token()}),
			UserAgent:   "gkessh/test",
			Logf:        t.Logf,
		},
	}
}

func (r *relay) target(port int) tunnel.Target {
	return tunnel.Target{Project: r.srv.ProjectName(), Zone: r.node.Zone, Instance: r.node.Name, Port: port}
}

// serve listens for a node port and runs handle on each connection in its
// own goroutine. When the test ends it closes the listener and every
// connection, and waits for the handlers.
func (r *relay) serve(t testing.TB, port int, handle func(net.Conn)) {
	t.Helper()
	r.node.ForwardPort(port, testnet.Serve(t, handle))
}

// backend hands over the connections to port.
func (r *relay) backend(t testing.TB, port int) <-chan net.Conn {
	conns := make(chan net.Conn, 16)
	r.serve(t, port, func(c net.Conn) { conns <- c })
	return conns
}

// echo serves an echo backend on port.
func (r *relay) echo(t testing.TB, port int) {
	r.serve(t, port, func(c net.Conn) {
		defer c.Close()
		io.Copy(c, c)
	})
}

func (r *relay) dial(t testing.TB, port int) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := r.dialer.DialContext(ctx, r.target(port))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func TestConn(t *testing.T) {
	r := newRelay(t)
	conns := r.backend(t, 8080)
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c1, err = r.dialer.DialContext(ctx, r.target(8080))
		if err != nil {
			return nil, nil, nil, err
		}
		select {
		case c2 = <-conns:
		case <-ctx.Done():
			c1.Close()
			return nil, nil, nil, ctx.Err()
		}
		// The node side first: then the relay stops waiting on it, acknowledges
		// what c1 still sends, and c1.Close need not linger.
		return c1, c2, func() { c2.Close(); c1.Close() }, nil
	})
}

// TestResume drops every websocket after 1 MiB while 8 MiB go each way; the
// streams must arrive whole.
func TestResume(t *testing.T) {
	r := newRelay(t)
	r.echo(t, 7)
	r.srv.SetFaults(emulator.Faults{DropAfterBytes: 1 << 20})
	c := r.dial(t, 7)
	defer c.Close()

	const size = 8 << 20
	want := make([]byte, size)
	if _, err := rand.Read(want); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		errc <- err
	}()
	got := make([]byte, size)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read after %d tunnels: %v", r.srv.Stats().Tunnels, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatal("echoed stream differs from what was sent")
	}
	// 16 MiB crossed the relay. A websocket carries a little more than
	// 1 MiB before it drops (bytes go in bursts) and replays repeat some,
	// so ask only that many were used.
	if n := r.srv.Stats().Tunnels; n < 8 {
		t.Errorf("%d websockets for 16 MiB dropped every 1 MiB, want at least 8", n)
	}
}

// TestFatal checks that refusals fail at once, with no retry, and say what
// to fix.
func TestFatal(t *testing.T) {
	r := newRelay(t)
	tests := []struct {
		name   string
		mutate func(*tunnel.Dialer, *tunnel.Target)
		code   int
		hint   string
	}{
		{"bad token", func(d *tunnel.Dialer, _ *tunnel.Target) {
			d.TokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "wrong"})
		}, tunnel.CodeNotAuthorized, "roles/iap.tunnelResourceAccessor"},
		{"unknown instance", func(_ *tunnel.Dialer, tg *tunnel.Target) { tg.Instance = "nope" }, tunnel.CodeLookupFailed, "check the instance name"},
		{"wrong zone", func(_ *tunnel.Dialer, tg *tunnel.Target) { tg.Zone = "europe-west1-b" }, tunnel.CodeLookupFailed, "zone"},
		{"nothing listening", func(_ *tunnel.Dialer, tg *tunnel.Target) { tg.Port = 9 }, tunnel.CodeFailedToConnectToBackend,
			"--rules=tcp:9 --source-ranges=35.235.240.0/20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := *r.dialer
			tg := r.target(22)
			tt.mutate(&d, &tg)
			before := r.srv.Stats().Tunnels
			start := time.Now()
			c, err := d.DialContext(context.Background(), tg)
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded")
			}
			var ce *tunnel.CloseError
			if !errors.As(err, &ce) || ce.Code != tt.code {
				t.Fatalf("got %v, want close code %d", err, tt.code)
			}
			if !strings.Contains(err.Error(), tt.hint) {
				t.Errorf("error %q does not say %q", err, tt.hint)
			}
			// Generous for a loaded machine: the websockets counted below
			// tell a retry.
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
			if n := r.srv.Stats().Tunnels - before; n != 1 {
				t.Errorf("%d websockets opened, want 1: no retries", n)
			}
		})
	}
}

// TestBackendEOF checks that when the node closes its end, the tunnel
// delivers what was sent and then EOF, and writes fail.
func TestBackendEOF(t *testing.T) {
	r := newRelay(t)
	conns := r.backend(t, 8080)
	c := r.dial(t, 8080)
	defer c.Close()
	b := <-conns
	if _, err := b.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, []byte("bye")) {
		t.Fatalf("read %q, %v; want \"bye\" then EOF", got, err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write after EOF: %v, want io.ErrClosedPipe", err)
	}
}

// wrapped stands for TLS over a BatchConn: a wrapper that writes what it is
// given piecemeal, and exposes the connection under it.
type wrapped struct{ net.Conn }

func (w wrapped) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k, err := w.Conn.Write(p[:min(len(p), 1000)])
		n += k
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

func (w wrapped) NetConn() net.Conn { return w.Conn }

// TestConnUnderWrapper moves bytes both ways when the BatchConn is under a
// wrapper, whose small writes the burst gathers.
func TestConnUnderWrapper(t *testing.T) {
	r := newRelay(t)
	r.echo(t, 8080)
	r.dialer.WS = &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return wrapped{iap.BatchConn(c)}, nil
	}}
	c := r.dial(t, 8080)
	defer c.Close()
	want := make([]byte, 4<<20)
	rand.Read(want)
	go c.Write(want)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("echo differs from what was sent")
	}
}

// countingConn counts writes.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestCallerDial: a websocket dialer that only says how to dial and what
// TLS to speak (as the transport's, through a proxy, with a private CA)
// still sends frames in bursts, and the handshake carries Dialer.Header.
// Over TLS 1 MiB is 64 records or more: gathered, it takes a handful of
// writes; without BatchConn, one or more a record.
func TestCallerDial(t *testing.T) {
	srv, err := emulator.New(emulator.Config{Nodes: 1, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	headers := make(chan string, 1)
	hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/connect") {
			headers <- r.Header.Get("X-Goog-Request-Reason")
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { hs.Close(); srv.Close() })
	node := srv.Node(srv.Nodes()[0])
	node.ForwardPort(8080, testnet.Serve(t, func(c net.Conn) { defer c.Close(); io.Copy(c, c) }))
	var writes atomic.Int64
	d := tunnel.Dialer{
		Endpoint:    "wss" + strings.TrimPrefix(hs.URL, "https"),
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: srv.Token()}),
		Header:      map[string][]string{"X-Goog-Request-Reason": {"ticket 42"}},
		WS: &websocket.Dialer{
			TLSClientConfig: hs.Client().Transport.(*http.Transport).TLSClientConfig,
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return countingConn{c, &writes}, nil
			},
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, tunnel.Target{Project: srv.ProjectName(), Zone: node.Zone, Instance: node.Name, Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if h := <-headers; h != "ticket 42" {
		t.Errorf("X-Goog-Request-Reason = %q", h)
	}
	want := make([]byte, 1<<20)
	rand.Read(want)
	before := writes.Load()
	go c.Write(want)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo: %v", err)
	}
	// 1 MiB is 64 DATA frames: sent one by one they take at least 64
	// writes (76-80 here, ACKs included); in bursts 6-17 on a quiet
	// machine and up to 33 under CI's load, as a slow reader lets the
	// bursts through smaller.
	if n := writes.Load() - before; n >= 64 {
		t.Errorf("1 MiB went out in %d writes, want bursts: fewer than its 64 frames", n)
	}
}

// TestLightTunnelsHoldLess: a Light dialer's open tunnels hold far less
// memory than the default's (a 32 KiB websocket read buffer, not 256 KiB),
// for a fleet that keeps many open at once. The relay's share is the same
// for both, so the difference is the client's.
func TestLightTunnelsHoldLess(t *testing.T) {
	r := newRelay(t)
	r.echo(t, 8080)
	const n = 16
	held := func(light bool) uint64 {
		d := *r.dialer
		d.Light = light
		before := liveHeap()
		var conns []net.Conn
		for range n {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, err := d.DialContext(ctx, r.target(8080))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			// A few bytes each way, as an SSH handshake sends.
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
				t.Fatal(err)
			}
		}
		after := liveHeap()
		for _, c := range conns {
			c.Close()
		}
		return (after - min(before, after)) / n
	}
	held(false) // the relay's first tunnels grow what it keeps for all
	heavy, light := held(false), held(true)
	t.Logf("an open tunnel holds %d KiB, %d KiB when Light", heavy>>10, light>>10)
	if heavy < light+128<<10 {
		t.Errorf("a Light tunnel holds %d KiB, the default one %d KiB: want at least 128 KiB less", light>>10, heavy>>10)
	}
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
