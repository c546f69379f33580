//go:build unix

package tunnel

import (
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// hangup returns a channel that is closed once nobody reads what is
// written to w, and a function that stops watching. It works for a pipe in
// non-blocking mode (os.Pipe, or the proxy's stdout): ssh going away shows
// there when it has nothing more to send, as nc notices with POLLHUP. For
// other writers the channel is nil.
func hangup(w io.Writer) (<-chan struct{}, func()) {
	f, ok := w.(*os.File)
	if !ok {
		return nil, func() {}
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return nil, func() {}
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, func() {}
	}
	hup, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		// A pipe's write end never becomes readable: the poller wakes this
		// only for the error it reports once the read end is closed. On a
		// blocking descriptor the wait fails at once and nothing is seen.
		err := sc.Read(func(fd uintptr) bool {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			_, err := unix.Poll(fds, 0)
			return err != nil || fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0
		})
		if err == nil {
			close(hup)
		}
	}()
	return hup, func() {
		f.SetReadDeadline(time.Now())
		<-done
	}
}
