package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

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
}

func tunnelCommand(stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:  "tunnel",
		Usage: "forward a local port to a node's port through IAP",
		UsageText: "gkessh tunnel [--listen [HOST:]PORT] NODE REMOTE_PORT\n\n" +
			"   Every connection to the local address gets its own tunnel. Ctrl-C stops.",
		Flags: append(googleFlags(),
			&ucli.StringFlag{Name: "listen", Value: "127.0.0.1:0", Usage: "local `[HOST:]PORT` to listen on; port 0 picks one"},
		),
		Action: func(c *ucli.Context) error {
			o := tunnelOptions{globalOptions: globals(c), Listen: c.String("listen")}
			args := c.Args().Slice()
			if len(args) != 2 {
				return usagef("want NODE and REMOTE_PORT: gkessh tunnel [--listen [HOST:]PORT] NODE REMOTE_PORT")
			}
			var err error
			if o.Node, o.Port, err = nodePort(args, 0, "gkessh tunnel NODE REMOTE_PORT"); err != nil {
				return err
			}
			if !strings.Contains(o.Listen, ":") {
				o.Listen = "127.0.0.1:" + o.Listen
			}
			return runTunnel(c.Context, o, stdio)
		},
	}
}

// runTunnel listens on o.Listen and gives every accepted connection its own
// tunnel, until ctx is cancelled. It prints the bound address first, so
// scripts can use port 0.
func runTunnel(ctx context.Context, o tunnelOptions, stdio Stdio) error {
	r, err := o.resolve(ctx, o.Node)
	if err != nil {
		return err
	}
	d, err := o.iapDialer(ctx, verbosef(stdio, o.Verbose))
	if err != nil {
		return err
	}
	target := tunnel.Target{Project: r.Project, Zone: r.Zone, Instance: r.Name, Port: o.Port}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	fmt.Fprintf(stdio.Out, "Listening on %s, forwarding to %s\n", ln.Addr(), target)

	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		local, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			ln.Close()
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer local.Close()
			if err := forward(ctx, d, target, local); err != nil && ctx.Err() == nil {
				fmt.Fprintf(stdio.Err, "gkessh: connection from %s: %v\n", local.RemoteAddr(), err)
			}
		}()
	}
}

// forward carries one local connection through its own tunnel.
func forward(ctx context.Context, d *tunnel.Dialer, target tunnel.Target, local net.Conn) error {
	conn, err := d.DialContext(ctx, target)
	if err != nil {
		return err
	}
	defer conn.Close()
	err = tunnel.Pipe(ctx, conn, local, local)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
