//go:build linux || darwin

package pty

import (
	"fmt"
	"os"

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
	name, err := unlockName(fd)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	tty, err = os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("pty: open %s: %w", name, err)
	}
	return master, tty, nil
}
