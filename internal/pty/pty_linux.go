package pty

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// unlockName unlocks the controller fd's terminal end (unlockpt) and
// returns its path (ptsname).
func unlockName(fd int) (string, error) {
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		return "", fmt.Errorf("pty: unlock: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		return "", fmt.Errorf("pty: get terminal number: %w", err)
	}
	return "/dev/pts/" + strconv.Itoa(n), nil
}

// getTermios is the ioctl that reads a terminal's modes.
const getTermios = unix.TCGETS
