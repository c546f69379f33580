//go:build freebsd || netbsd || openbsd || dragonfly

package pty

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// Open is written for Linux and macOS only; the BSDs need a grantpt of
// their own.
func Open() (master, tty *os.File, err error) {
	return nil, nil, errors.ErrUnsupported
}

// getTermios is the ioctl that reads a terminal's modes.
const getTermios = unix.TIOCGETA
