package sshclient

import (
	"context"
	"net"
	"sync"
	"time"
)

// staleTunnel is how long a tunnel opened ahead of the key work may wait
// for its SSH client: sshd drops a client that stays silent past its
// LoginGraceTime (120 s by default).
const staleTunnel = 30 * time.Second

// OpenFirst opens a connection before anything is changed for a login, so
// that a tunnel IAP refuses (firewall, IAM, missing VM) leaves metadata and
// key files as they were. The dial function it returns hands out that
// tunnel once, unless it has waited past staleTunnel, and dials afresh
// after; release closes it if it was never handed out.
func OpenFirst(ctx context.Context, dial DialFunc) (next DialFunc, release func(), err error) {
	conn, err := dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	opened := time.Now()
	var mu sync.Mutex
	take := func() net.Conn {
		mu.Lock()
		defer mu.Unlock()
		c := conn
		conn = nil
		if c != nil && time.Since(opened) > staleTunnel {
			c.Close()
			c = nil
		}
		return c
	}
	next = func(ctx context.Context) (net.Conn, error) {
		if c := take(); c != nil {
			return c, nil
		}
		return dial(ctx)
	}
	release = func() {
		if c := take(); c != nil {
			c.Close()
		}
	}
	return next, release, nil
}
