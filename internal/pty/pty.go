//go:build linux

// Package pty allocates pseudo-terminals with plain ioctls, for the
// emulator's SSH server and for tests that drive gkessh interactively.
package pty

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Open allocates a pseudo-terminal and returns its controller (master) and
// terminal (slave) ends. The caller closes both.
func Open() (master, tty *os.File, err error) {
	// O_NONBLOCK lets os.File register the master with the runtime poller,
	// so reads honour deadlines and Close unblocks them.
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("pty: open /dev/ptmx: %w", err)
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	// unlockpt: clear the lock so the terminal end can be opened.
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("pty: unlock: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("pty: get terminal number: %w", err)
	}
	name := "/dev/pts/" + strconv.Itoa(n)
	tty, err = os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("pty: open %s: %w", name, err)
	}
	return master, tty, nil
}

// SetSize sets the window size of the terminal behind f (either end); the
// kernel signals SIGWINCH to the terminal's foreground process group.
func SetSize(f *os.File, rows, cols int) error {
	ws := &unix.Winsize{Row: uint16(rows), Col: uint16(cols)}
	// Through SyscallConn, not Fd: Fd would switch a polled master back to
	// blocking mode and break its deadlines.
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("pty: set window size: %w", err)
	}
	var ioctlErr error
	if err := rc.Control(func(fd uintptr) {
		ioctlErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws)
	}); err != nil {
		ioctlErr = err
	}
	if ioctlErr != nil {
		return fmt.Errorf("pty: set window size %dx%d: %w", cols, rows, ioctlErr)
	}
	return nil
}
