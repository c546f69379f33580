package iap

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reads and writes on non-blocking descriptors go straight to the kernel
// with RawSyscall, without telling the Go scheduler. A read or write of a
// few hundred KiB can take longer than sysmon's 20 µs tick, and with the
// proxy's GOMAXPROCS=1 sysmon then hands the P to a fresh thread that
// finds nothing to do and sleeps again, which was most of the proxy's
// system time. A
// non-blocking call cannot block, so holding the P through it is safe;
// when it would block, the poller waits as usual.

// rawIO reads and writes a non-blocking descriptor.
type rawIO struct {
	rc   syscall.RawConn
	addr net.Addr // for errors; nil for files
	name string   // for errors, of files
}

// connRawIO returns raw I/O for a TCP or Unix connection, nil otherwise.
func connRawIO(c net.Conn) *rawIO {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return nil
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil
	}
	return &rawIO{rc: rc, addr: c.RemoteAddr()}
}

// fileRawIO returns raw I/O for a pipe or socket in non-blocking mode, nil
// for anything else: a blocking call would hold up every goroutine.
func fileRawIO(f *os.File) *rawIO {
	st, err := f.Stat()
	if err != nil || st.Mode()&(os.ModeNamedPipe|os.ModeSocket) == 0 {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	nonblock := false
	rc.Control(func(fd uintptr) {
		flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		nonblock = err == nil && flags&unix.O_NONBLOCK != 0
	})
	if !nonblock {
		return nil
	}
	return &rawIO{rc: rc, name: f.Name()}
}

func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			k, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			n, errno = int(k), e
			return true
		}
	})
	switch {
	case err != nil:
		return 0, r.wrap("read", err)
	case errno != 0:
		return 0, r.wrap("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (r *rawIO) Write(p []byte) (int, error) {
	n := 0
	var errno syscall.Errno
	err := r.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			k, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
			switch e {
			case 0:
				n += int(k)
			case unix.EINTR:
			case unix.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return n, r.wrap("write", err)
	case errno != 0:
		return n, r.wrap("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

// wrap makes err look like what the connection or file would return.
func (r *rawIO) wrap(op string, err error) error {
	if r.addr == nil {
		if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.As(err, new(*os.SyscallError)) {
			err = os.ErrClosed // the poller's only other failure: closed
		}
		return &os.PathError{Op: op, Path: r.name, Err: err}
	}
	if oe, ok := err.(*net.OpError); ok {
		oe.Op = op
		return oe
	}
	return &net.OpError{Op: op, Net: r.addr.Network(), Addr: r.addr, Err: err}
}
