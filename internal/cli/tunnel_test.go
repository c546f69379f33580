//go:build unix

package cli

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/testio"
)

// TestListenAddr: --listen reads as gcloud's --local-host-port, whose host
// defaults to localhost; only an explicit host listens elsewhere.
func TestListenAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{":9000", "127.0.0.1:9000"},
		{"9000", "127.0.0.1:9000"},
		{"0", "127.0.0.1:0"},
		{"localhost:9000", "localhost:9000"},
		{"0.0.0.0:9000", "0.0.0.0:9000"},
		{"[::1]:9000", "[::1]:9000"},
	} {
		if got, err := listenAddr(tc.in); err != nil || got != tc.want {
			t.Errorf("listenAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"x", ":99999", "a:b:c"} {
		if _, err := listenAddr(bad); err == nil {
			t.Errorf("listenAddr(%q): no error", bad)
		}
	}
}

// TestTunnelBind: `--listen :PORT` (the README's form) binds loopback only,
// and an explicit non-loopback bind (0.0.0.0: IPv4 only, as typed) is
// warned about on stderr, in one line.
func TestTunnelBind(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	for _, tc := range []struct {
		listen   string
		loopback bool
	}{{":0", true}, {"0.0.0.0:0", false}} {
		outR, outW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var stderr testio.Buffer
		code := make(chan int, 1)
		go func() {
			defer outW.Close()
			code <- Main(ctx, []string{"gkessh", "tunnel", node, "8080", "--listen", tc.listen, "--iap-tunnel-disable-connection-check"}, Stdio{In: strings.NewReader(""), Out: outW, Err: &stderr})
		}()
		line, err := bufio.NewReader(outR).ReadString('\n')
		cancel()
		<-code
		io.Copy(io.Discard, outR)
		outR.Close()
		if err != nil {
			t.Fatalf("--listen %s: no address printed: %v; stderr %s", tc.listen, err, stderr.String())
		}
		host, _, err := net.SplitHostPort(strings.TrimSuffix(strings.Fields(line)[2], ","))
		if err != nil {
			t.Fatal(err)
		}
		if ip := net.ParseIP(host); ip == nil || ip.IsLoopback() != tc.loopback || ip.To4() == nil {
			t.Errorf("--listen %s bound %s, want an IPv4 address", tc.listen, host)
		}
		if warned := strings.Contains(stderr.String(), "WARNING: listening on"); warned == tc.loopback {
			t.Errorf("--listen %s: warned %v; stderr %q", tc.listen, warned, stderr.String())
		}
		for _, l := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(l, "WARNING") && !strings.Contains(l, "unless you mean that.") {
				t.Errorf("--listen %s: the warning is not one line: %q", tc.listen, stderr.String())
			}
		}
	}
}
