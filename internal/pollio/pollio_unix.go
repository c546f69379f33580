//go:build unix

package pollio

import (
	"os"

	"golang.org/x/sys/unix"
)

// Pollable returns a non-blocking twin of f when f is a pipe or socket in
// blocking mode (as ssh gives a ProxyCommand), so that waiting on it parks a
// goroutine in Go's network poller instead of a thread in the kernel: at
// tens of thousands of reads and writes a second, thread switches
// otherwise cost more than the copying. The twin is a duplicate descriptor;
// restore closes it and puts back blocking mode, which duplicates share.
// Terminals and files are left alone, since their mode is shared with
// whoever else has them open. A pipe's buffer is set to size unless size
// is 0 (where the OS can). It returns nil when there is nothing to do.
func Pollable(f *os.File, size int) (twin *os.File, restore func()) {
	st, err := f.Stat()
	if err != nil || st.Mode()&(os.ModeNamedPipe|os.ModeSocket) == 0 {
		return nil, nil
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, nil
	}
	dup := -1
	ctlErr := sc.Control(func(fd uintptr) {
		flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil || flags&unix.O_NONBLOCK != 0 {
			return // already non-blocking, so Go polls it; or unknown
		}
		d, err := unix.Dup(int(fd))
		if err != nil {
			return
		}
		if err := unix.SetNonblock(d, true); err != nil {
			unix.Close(d)
			return
		}
		if size > 0 {
			setPipeSize(d, size)
		}
		dup = d
	})
	if ctlErr != nil || dup < 0 {
		return nil, nil
	}
	twin = os.NewFile(uintptr(dup), f.Name())
	return twin, func() {
		if sc, err := twin.SyscallConn(); err == nil {
			sc.Control(func(fd uintptr) { unix.SetNonblock(int(fd), false) })
		}
		twin.Close()
	}
}
