package cli

import (
	"context"
	"fmt"
	"net"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/gkessh/gkessh/tunnel"
)

// tunnelOptions are the flags and arguments of
// `gkessh tunnel NODE REMOTE_PORT [--listen ADDR]`.
type tunnelOptions struct {
	globalOptions
	Node   string
	Port   int
	Listen string
	// NoCheck: listen at once, without first opening one tunnel to see
	// that the port can be reached (gcloud's
	// --iap-tunnel-disable-connection-check).
	NoCheck bool
}

func tunnelCommand(d *deps, stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:  "tunnel",
		Usage: "forward a local port to a node's port through IAP",
		UsageText: "gkessh tunnel [--listen [HOST:]PORT] NODE REMOTE_PORT\n\n" +
			"   One tunnel is opened first, to check the port can be reached (as gcloud\n" +
			"   start-iap-tunnel does); then every connection to the local address gets its\n" +
			"   own tunnel. Ctrl-C stops.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "listen", Aliases: []string{"local-host-port"}, Value: "127.0.0.1:0", Usage: "local `[HOST:]PORT` to listen on; HOST defaults to localhost, port 0 picks one (gcloud start-iap-tunnel's --local-host-port)"},
			&ucli.BoolFlag{Name: "iap-tunnel-disable-connection-check", Usage: "gcloud start-iap-tunnel's: listen at once, without first opening one tunnel to check that the node's port can be reached"},
			&ucli.BoolFlag{Name: "listen-on-stdin", Usage: "gcloud start-iap-tunnel's: carry stdin and stdout through one tunnel instead of listening, as gkessh proxy --no-ensure-key does"},
		},
		Action: func(c *ucli.Context) error {
			o := tunnelOptions{globalOptions: globals(c), Listen: c.String("listen"), NoCheck: c.Bool("iap-tunnel-disable-connection-check")}
			args := c.Args().Slice()
			if len(args) != 2 {
				return usagef("want NODE and REMOTE_PORT: gkessh tunnel [--listen [HOST:]PORT] NODE REMOTE_PORT")
			}
			var err error
			if o.Node, o.Port, err = nodePort(args, 0, "gkessh tunnel NODE REMOTE_PORT"); err != nil {
				return err
			}
			if c.Bool("listen-on-stdin") {
				// As gcloud: the tunnel's bytes, no key staged, no check.
				switch {
				case c.IsSet("listen"):
					return usagef("--listen-on-stdin and --listen: give one")
				case o.NoCheck:
					return usagef("--listen-on-stdin opens its one tunnel at once, with no connection check to disable: drop --iap-tunnel-disable-connection-check")
				}
				return runProxy(c.Context, proxyOptions{globalOptions: o.globalOptions, Node: o.Node, Port: o.Port, NoEnsureKey: true}, d, stdio)
			}
			if o.Listen, err = listenAddr(o.Listen); err != nil {
				return err
			}
			return runTunnel(c.Context, o, d, stdio)
		},
	}
}

// listenAddr reads --listen as gcloud reads --local-host-port: the host
// defaults to localhost, so ":9000" or "9000" never listens on every
// interface by accident.
func listenAddr(s string) (string, error) {
	addr := s
	if !strings.Contains(s, ":") {
		addr = ":" + s
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !portNumber(port) {
		return "", usagef("--listen %q: want [HOST:]PORT, PORT 0-65535", s)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// runTunnel listens on o.Listen and gives every accepted connection its own
// tunnel, until ctx is cancelled. It prints the bound address first, so
// scripts can use port 0.
func runTunnel(ctx context.Context, o tunnelOptions, d *deps, stdio Stdio) error {
	if err := checkNode(o.Node, o.Zone); err != nil {
		return err
	}
	a, err := newResolver(o.globalOptions, d)
	if err != nil {
		return err
	}
	r, err := a.Resolve(ctx, o.Node)
	if err != nil {
		return err
	}
	dl, err := d.iapDialer(ctx, o.globalOptions)
	if err != nil {
		return err
	}
	target := tunnel.Target{Project: r.Project, Zone: r.Zone, Instance: r.Name, Port: o.Port}
	if !o.NoCheck {
		// As gcloud start-iap-tunnel: a port IAP cannot reach (firewall,
		// IAM, nothing listening) fails now, not at the first connection.
		fmt.Fprintln(stdio.Err, "Testing if tunnel connection works.")
		conn, err := dl.DialContext(ctx, target)
		if err != nil {
			return fmt.Errorf("while checking that a tunnel to %s can be opened: %w", target, err)
		}
		conn.Close()
	}
	network := "tcp"
	if host, _, err := net.SplitHostPort(o.Listen); err == nil && net.ParseIP(host).To4() != nil {
		// 0.0.0.0 means IPv4's wildcard, as in gcloud; "tcp" would bind
		// IPv6's too, and report [::].
		network = "tcp4"
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, network, o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
		fmt.Fprintf(stdio.Err, "gkessh: WARNING: listening on %s, which other machines can reach: anyone who can connect to it "+
			"reaches %s with your IAP access. Use --listen 127.0.0.1:PORT unless you mean that.\n", ln.Addr(), target)
	}
	fmt.Fprintf(stdio.Out, "Listening on %s, forwarding to %s\n", ln.Addr(), target)
	dial := func(ctx context.Context) (net.Conn, error) { return dl.DialContext(ctx, target) }
	return tunnel.Forward(ctx, ln, dial, func(from net.Addr, err error) {
		fmt.Fprintf(stdio.Err, "gkessh: connection from %s: %v\n", from, err)
	})
}
