package sshclient

import (
	"golang.org/x/sys/windows"
)

// enableVT makes the console behind the output handle fd interpret escape
// sequences, as a remote shell expects, and returns what puts the old mode
// back. DISABLE_NEWLINE_AUTO_RETURN leaves line feeds to the remote side's
// terminal settings, as on a unix terminal. A handle that is no console
// is left alone.
func enableVT(fd int) (restore func(), err error) {
	h := windows.Handle(fd)
	var mode uint32
	if windows.GetConsoleMode(h, &mode) != nil {
		return func() {}, nil
	}
	vt := mode | windows.ENABLE_PROCESSED_OUTPUT | windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING | windows.DISABLE_NEWLINE_AUTO_RETURN
	if err := windows.SetConsoleMode(h, vt); err != nil {
		return nil, err // a console older than Windows 10 1511
	}
	return func() { windows.SetConsoleMode(h, mode) }, nil
}
