package pty

import (
	"fmt"
	"os"
	"unsafe"

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
	// grantpt and unlockpt, as libc does them on macOS.
	if err := unix.IoctlSetInt(fd, unix.TIOCPTYGRANT, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("pty: grant: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TIOCPTYUNLK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("pty: unlock: %w", err)
	}
	// ptsname: the kernel writes the terminal's path into a 128-byte
	// buffer, which x/sys has no typed call for.
	var buf [128]byte
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.TIOCPTYGNAME), uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
		master.Close()
		return nil, nil, fmt.Errorf("pty: get terminal name: %w", errno)
	}
	name := unix.ByteSliceToString(buf[:])
	tty, err = os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("pty: open %s: %w", name, err)
	}
	return master, tty, nil
}

// getTermios is the ioctl that reads a terminal's modes.
const getTermios = unix.TIOCGETA
