package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/gkessh/gkessh/internal/iap"
)

// pipeBuffer is the copy buffer each way: several DATA frames per write.
const pipeBuffer = 128 << 10

// join copies between a tunnel connection c and a local stream (r, w) until
// both directions are done, the way nc does for ssh's ProxyCommand:
//
//   - r to c until r ends, then c.CloseWrite if c has it (relay v4 cannot
//     tell the VM, so the VM side ends the tunnel when it is done);
//   - c to w until the tunnel ends, then w's write side is closed (its
//     CloseWrite, else Close), so the local side sees EOF. Nothing can reach
//     the VM any more, so join stops reading r: a blocked read is
//     interrupted when r has SetReadDeadline, and otherwise join waits for
//     it to return (ssh closes the proxy's stdin once it sees EOF).
//   - When w is a pipe whose reader goes away, as when ssh exits without
//     killing its ProxyCommand, join closes c and ends like that.
//
// Cancelling ctx closes c and interrupts r. join returns the tunnel's error,
// else the local side's, else nil; ctx.Err() if cancelled. A non-nil watch
// is shown what r sends and counts what goes to w, and may be read once
// join returns.
func join(ctx context.Context, c net.Conn, r io.Reader, w io.Writer, watch *kexWatch) error {
	rr, ww := rawFile(r), rawFile(w)
	if watch != nil {
		rr, ww = watchedReader{rr, watch}, countedWriter{ww, watch}
	}
	upc := make(chan error, 1)
	go func() {
		_, err := io.CopyBuffer(onlyWriter{c}, onlyReader{rr}, make([]byte, pipeBuffer))
		if err == nil {
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				err = cw.CloseWrite()
			}
		}
		upc <- err
	}()
	downc := make(chan error, 1)
	go func() {
		var err error
		if tc, ok := c.(*Conn); ok {
			// Straight from the websocket reader to w.
			_, err = tc.s.WriteTo(ww)
		} else {
			_, err = io.CopyBuffer(onlyWriter{ww}, onlyReader{c}, make([]byte, pipeBuffer))
		}
		if cerr := closeWrite(w); err == nil {
			err = cerr
		}
		downc <- err
	}()

	hup, stopWatch := hangup(w)
	defer stopWatch()
	var (
		upErr, downErr   error
		upDone, downDone bool
		closedC, stopped bool // errors after these are of our making
		done             = ctx.Done()
	)
	for !upDone || !downDone {
		select {
		case <-hup:
			// The local reader is gone: nothing more can be delivered.
			hup = nil
			c.Close()
			closedC = true
			stopped = interrupt(r)
		case upErr = <-upc:
			upDone = true
			if upErr != nil && !downDone {
				// The local side failed: end the tunnel.
				c.Close()
				closedC = true
			}
		case downErr = <-downc:
			downDone = true
			if !upDone {
				stopped = interrupt(r)
			}
		case <-done:
			done = nil
			// Closing w first unblocks a write to it that would hold up
			// the tunnel's close. Close, not CloseWrite: the down
			// goroutine may be writing, and an ssh channel's CloseWrite
			// races with its Write.
			if cl, ok := w.(io.Closer); ok {
				cl.Close()
			} else {
				closeWrite(w)
			}
			c.Close()
			closedC = true
			stopped = interrupt(r)
		}
	}
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case downErr != nil && !(closedC && errors.Is(downErr, net.ErrClosed)):
		return downErr
	case upErr != nil && !(stopped && errors.Is(upErr, os.ErrDeadlineExceeded)) && !isTunnelErr(upErr):
		return upErr
	}
	return nil
}

// isTunnelErr reports a write to the tunnel failing because the tunnel
// ended, which the other direction already reported.
func isTunnelErr(err error) bool {
	return errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed)
}

// interrupt makes a blocked read of r return, if r allows it.
func interrupt(r io.Reader) bool {
	if d, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok {
		return d.SetReadDeadline(time.Now()) == nil
	}
	return false
}

// closeWrite signals EOF to whoever reads what was written to w.
func closeWrite(w io.Writer) error {
	switch w := w.(type) {
	case interface{ CloseWrite() error }:
		return w.CloseWrite()
	case io.Closer:
		return w.Close()
	}
	return nil
}

// rawFile returns v's reads and writes bypassing the scheduler when v is
// a non-blocking pipe or socket (the proxy's stdio), else v itself. Only
// the copying uses it; closing and deadlines go to v.
func rawFile[T any](v T) T {
	if f, ok := any(v).(*os.File); ok {
		if raw := iap.RawFile(f); raw != nil {
			return any(raw).(T)
		}
	}
	return v
}

// onlyReader and onlyWriter hide ReadFrom and WriteTo, so io.CopyBuffer
// uses its big buffer rather than a method picking a smaller one.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }
