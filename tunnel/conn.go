package tunnel

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/gkessh/gkessh/internal/iap"
)

// Reconnect policy. The first retry is immediate; the whole run of retries
// takes about 20 s, inside the time a relay keeps a detached session.
// maxReconnects counts the reconnects since the stream last moved (the
// relay sent data or acknowledged some), not since the last websocket
// opened: a relay that takes every reconnect and then stays silent uses
// them up like one that refuses them.
const (
	maxReconnects    = 8
	firstBackoff     = 250 * time.Millisecond
	maxBackoff       = 5 * time.Second
	reconnectTimeout = 15 * time.Second
	// closeLinger bounds how long Close waits for the relay to acknowledge
	// what was written.
	closeLinger = 5 * time.Second
)

// Conn is a TCP connection to a VM port, carried by the IAP relay. It is a
// net.Conn:
//
//   - The context given to DialContext bounds the dial only; the Conn lives
//     until Close or until the tunnel fails.
//   - When the websocket breaks for a reason worth retrying (network error,
//     relay restart, expired token), the Conn reconnects with backoff and
//     resumes where the relay left off, resending what it did not
//     acknowledge: Read and Write merely block meanwhile. If that fails
//     (8 reconnects in a row without the relay sending or acknowledging a
//     byte, whether or not each websocket opened),
//     or the relay closes with a fatal code, Read (after the bytes already
//     received) and Write return the error, a *CloseError for fatal codes.
//   - Read returns io.EOF once the relay closed the tunnel normally, which
//     it does when the VM side closed the TCP connection.
//   - Deadlines work as in net.Conn; they interrupt Read and Write, never
//     the tunnel.
//   - CloseWrite makes further writes fail; relay v4 has no half-close, so
//     the VM side does not see EOF and Read goes on until it closes.
//   - It sends no websocket pings, as gcloud sends none and IAP has a close
//     code for opcodes it does not want; keepalive is ssh's
//     (ServerAliveInterval). The relay's pings are answered.
//   - Close makes pending and later Read and Write fail at once, then sends
//     what was written, waits up to 5 s for the relay to acknowledge it, and
//     closes the websocket normally, which closes the VM side.
type Conn struct {
	s      *iap.Stream
	d      *Dialer
	t      Target
	sid    string
	local  net.Addr
	ctx    context.Context // lives until Close; bounds reconnects
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	once   sync.Once
}

var _ net.Conn = (*Conn)(nil)

// DialContext opens a tunnel to t. ctx bounds the dial and the relay's
// answer, not the connection. Refusals by the relay come back as
// *CloseError, wrapped.
func (d *Dialer) DialContext(ctx context.Context, t Target) (net.Conn, error) {
	if t.Project == "" || t.Zone == "" || t.Instance == "" || t.Port <= 0 || t.Port > 65535 {
		return nil, fmt.Errorf("iap: incomplete tunnel target %s: need project, zone, instance and port", t)
	}
	u, err := d.connectURL(t)
	if err != nil {
		return nil, err
	}
	ws, f, err := d.open(ctx, u, iap.TagConnectSuccessSID, t.Port)
	if err != nil {
		return nil, fmt.Errorf("iap: tunnel to %s: %w", t, err)
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &Conn{
		s:      iap.NewStream(),
		d:      d,
		t:      t,
		sid:    f.SID,
		local:  ws.LocalAddr(),
		ctx:    cctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	switch {
	case d.AckTimeout == 0:
		c.s.SetAckTimeout(defaultAckTimeout)
	case d.AckTimeout > 0:
		c.s.SetAckTimeout(d.AckTimeout)
	}
	go c.run(ws)
	return c, nil
}

func (c *Conn) logf(format string, args ...any) {
	if c.d.Logf != nil {
		c.d.Logf(format, args...)
	}
}

// run serves the stream over ws, and over new websockets when ws breaks,
// until the stream ends.
func (c *Conn) run(ws *websocket.Conn) {
	defer close(c.done)
	defer c.cancel()
	left := maxReconnects // reconnects left; the stream moving refills them
	for {
		mark := c.moved()
		err := c.s.Serve(ws)
		if err == nil {
			return
		}
		err = closeErr(err, c.t.Port)
		if retryable(err) && c.ctx.Err() == nil {
			if c.moved() != mark {
				left = maxReconnects
			}
			c.logf("iap: tunnel to %s broke (%v); resuming at byte %d", c.t, err, c.s.Received())
			ws, err = c.resume(err, &left)
			if err == nil {
				continue
			}
		}
		c.s.Abort(fmt.Errorf("iap: tunnel to %s: %w", c.t, err))
		return
	}
}

// moved is how far the stream has come: bytes received plus bytes the
// relay acknowledged.
func (c *Conn) moved() uint64 { return c.s.Received() + c.s.Acked() }

// resume opens a websocket on the same session, using up reconnects from
// *left, one per attempt.
func (c *Conn) resume(cause error, left *int) (*websocket.Conn, error) {
	if *left == 0 {
		return nil, &StuckError{Reconnects: maxReconnects, Last: cause}
	}
	backoff := time.Duration(0)
	for ; *left > 0; *left-- {
		attempt := maxReconnects - *left + 1
		if backoff > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-c.ctx.Done():
				t.Stop()
				return nil, c.ctx.Err()
			}
		}
		backoff = min(max(2*backoff, firstBackoff), maxBackoff)
		if c.s.Finished() {
			return nil, net.ErrClosed
		}
		u, err := c.d.reconnectURL(c.t, c.sid, c.s.Received())
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(c.ctx, reconnectTimeout)
		ws, f, err := c.d.open(ctx, u, iap.TagReconnectSuccessACK, c.t.Port)
		cancel()
		if err == nil {
			if err := c.s.Resume(f.Ack); err != nil {
				ws.Close()
				return nil, err
			}
			c.logf("iap: tunnel to %s resumed (attempt %d)", c.t, attempt)
			*left--
			return ws, nil
		}
		if !retryable(err) {
			return nil, err
		}
		c.logf("iap: reconnect %d of %d to %s: %v", attempt, maxReconnects, c.t, err)
		cause = err
	}
	return nil, fmt.Errorf("lost the relay and %d reconnects failed: %w", maxReconnects, cause)
}

// StuckError ends a tunnel whose relay took reconnect after reconnect but
// neither sent nor acknowledged a byte on any of them: a relay, or a path
// to it, that accepts websockets and then goes silent.
type StuckError struct {
	Reconnects int
	Last       error // why the last websocket was given up
}

func (e *StuckError) Error() string {
	return fmt.Sprintf("the relay took %d reconnects in a row but sent and acknowledged nothing on them: giving up (last: %v)", e.Reconnects, e.Last)
}

func (e *StuckError) Unwrap() error { return e.Last }

// Read implements net.Conn.
func (c *Conn) Read(p []byte) (int, error) { return c.s.Read(p) }

// Write implements net.Conn. Data is split into DATA frames of at most
// MaxDataLen bytes; Write returns once they are sent (queued, when the
// tunnel is reconnecting or a write deadline is set), and blocks while
// 2 MiB await the relay's acknowledgement.
func (c *Conn) Write(p []byte) (int, error) { return c.s.Write(p) }

// CloseWrite makes further Writes fail. See Conn for what the VM side sees.
func (c *Conn) CloseWrite() error { return c.s.CloseWrite() }

// Close implements net.Conn; see Conn for what it waits for.
func (c *Conn) Close() error {
	first := false
	c.once.Do(func() { first = true })
	if !first {
		return net.ErrClosed
	}
	c.s.Shutdown(closeLinger)
	t := time.NewTimer(closeLinger + iap.CloseWait)
	select {
	case <-c.done:
	case <-t.C:
		c.s.Abort(net.ErrClosed)
	}
	t.Stop()
	c.cancel()
	<-c.done
	return nil
}

// LocalAddr is the local end of the first websocket's TCP connection.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr is the Target.
func (c *Conn) RemoteAddr() net.Addr { return c.t }

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error {
	c.s.SetReadDeadline(t)
	return c.s.SetWriteDeadline(t)
}

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.s.SetReadDeadline(t) }

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.s.SetWriteDeadline(t) }

// SessionID is the relay's id for the tunnel, for logs.
func (c *Conn) SessionID() string { return c.sid }
