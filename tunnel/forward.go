package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// Forward accepts connections on ln until ctx is cancelled or ln fails, and
// carries each over its own connection from dial, with join: the listener
// front end of `gkessh tunnel` and of ssh -L style forwards. onErr, if not
// nil, hears of each connection that failed. Forward closes ln and returns
// once every connection is done: nil when ctx ended it.
func Forward(ctx context.Context, ln net.Listener, dial func(context.Context) (net.Conn, error), onErr func(from net.Addr, err error)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		local, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer local.Close()
			err := forwardOne(ctx, dial, local)
			if err != nil && ctx.Err() == nil && onErr != nil {
				onErr(local.RemoteAddr(), err)
			}
		}()
	}
}

func forwardOne(ctx context.Context, dial func(context.Context) (net.Conn, error), local net.Conn) error {
	conn, err := dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	err = join(ctx, conn, local, local, nil)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
