//go:build unix

// Package pty allocates pseudo-terminals with plain ioctls, for the
// emulator's SSH server and for tests that drive gkessh interactively.
package pty

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

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

// Termios reads the modes of the terminal behind f; on Linux the
// controller end reports the terminal end's.
func Termios(f *os.File) (*unix.Termios, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var tio *unix.Termios
	var ioctlErr error
	if err := rc.Control(func(fd uintptr) { tio, ioctlErr = unix.IoctlGetTermios(int(fd), getTermios) }); err != nil {
		return nil, err
	}
	return tio, ioctlErr
}
