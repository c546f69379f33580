package pty

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// unlockName does grantpt and unlockpt, as libc does them on macOS, and
// returns the terminal end's path (ptsname).
func unlockName(fd int) (string, error) {
	if err := unix.IoctlSetInt(fd, unix.TIOCPTYGRANT, 0); err != nil {
		return "", fmt.Errorf("pty: grant: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TIOCPTYUNLK, 0); err != nil {
		return "", fmt.Errorf("pty: unlock: %w", err)
	}
	// The kernel writes the path into a 128-byte buffer, which x/sys has
	// no typed call for.
	var buf [128]byte
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.TIOCPTYGNAME), uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
		return "", fmt.Errorf("pty: get terminal name: %w", errno)
	}
	return unix.ByteSliceToString(buf[:]), nil
}

// getTermios is the ioctl that reads a terminal's modes.
const getTermios = unix.TIOCGETA
