//go:build !windows

package sshclient

import (
	"io"
	"os"
)

// consoleInput is f: a unix terminal in raw mode passes every byte on.
func consoleInput(f *os.File) io.Reader { return f }

// consoleOutput is the terminal itself: a unix tty is one file for input,
// output and its size.
func consoleOutput(in int) (fd int, close func()) { return in, func() {} }
