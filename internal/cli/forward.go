package cli

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/sshclient"
	"github.com/gkessh/gkessh/tunnel"
)

// forward is one listening end of a -L or -R forward.
type forward struct {
	flag string // -L: listens here, the node dials; -R: the node listens
	sshclient.Forward
	ln net.Listener
}

// listenLocal binds every -L forward's port, before anything changes on
// the node's side, so that a port in use fails first.
func listenLocal(ctx context.Context, specs []sshclient.Forward) ([]forward, error) {
	var fwds []forward
	for _, f := range specs {
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", f.Listen)
		if err != nil {
			closeAll(fwds)
			return nil, fmt.Errorf("-L %s: %w", f.Listen, err)
		}
		fwds = append(fwds, forward{"-L", f, ln})
	}
	return fwds, nil
}

// listenRemote asks the node to listen for every -R forward in specs, and
// adds them to fwds.
func listenRemote(client *ssh.Client, specs []sshclient.Forward, fwds []forward, node string) ([]forward, error) {
	for _, f := range specs {
		addr := f.Listen
		if strings.HasPrefix(addr, ":") {
			addr = "0.0.0.0" + addr // every interface, which sshd allows only with GatewayPorts
		}
		ln, err := client.Listen("tcp", addr)
		if err != nil {
			return fwds, fmt.Errorf("-R %s: %s refused to listen: %w", f.Listen, node, err)
		}
		fwds = append(fwds, forward{"-R", f, ln})
	}
	return fwds, nil
}

func closeAll(fwds []forward) {
	for _, f := range fwds {
		f.ln.Close()
	}
}

// serveForwards carries what the forwards' listeners accept, through
// client for -L and from here for -R, until stop, which closes the
// listeners (cancelling -R's on the node) and may be called again.
func serveForwards(ctx context.Context, stdio Stdio, client *ssh.Client, fwds []forward, node string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, f := range fwds {
		dial := func(ctx context.Context) (net.Conn, error) { return client.DialContext(ctx, "tcp", f.Target) }
		where := fmt.Sprintf("%s to %s on %s", f.ln.Addr(), f.Target, node)
		if f.flag == "-R" {
			dial = func(ctx context.Context) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", f.Target)
			}
			// The listener's Addr has the port the node chose but not the
			// host asked for, which x/crypto sends as given.
			host, _, _ := net.SplitHostPort(f.Listen)
			_, port, _ := net.SplitHostPort(f.ln.Addr().String())
			where = fmt.Sprintf("%s on %s to %s here", net.JoinHostPort(host, port), node, f.Target)
		}
		fmt.Fprintf(stdio.Err, "Forwarding %s.\n", where)
		wg.Add(1)
		go func() {
			defer wg.Done()
			tunnel.Forward(ctx, f.ln, dial, func(from net.Addr, err error) {
				fmt.Fprintf(stdio.Err, "gkessh: %s %s: connection from %s: %v\n", f.flag, f.Listen, from, err)
			})
		}()
	}
	return sync.OnceFunc(func() {
		cancel()
		wg.Wait()
	})
}
