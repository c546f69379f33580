package sshclient

import (
	"io"
	"os"

	"golang.org/x/sys/windows"
)

// consoleInput is f read with ReadConsoleW when f is a console, so that a
// Ctrl-Z typed in a terminal session reaches the node (consoleReader);
// otherwise f.
func consoleInput(f *os.File) io.Reader {
	h := windows.Handle(f.Fd())
	var mode uint32
	if windows.GetConsoleMode(h, &mode) != nil {
		return f
	}
	return &consoleReader{read: func(units []uint16) (int, error) {
		var n uint32
		err := windows.ReadConsole(h, &units[0], uint32(len(units)), &n, nil)
		return int(n), err
	}}
}

// consoleOutput is the console's screen buffer, CONOUT$, for its size and
// escape-sequence mode when the session's output is not the console
// (redirected): the input handle has neither. close releases it. in is
// returned when there is no console to open.
func consoleOutput(in int) (fd int, close func()) {
	name, err := windows.UTF16PtrFromString("CONOUT$")
	if err != nil {
		return in, func() {}
	}
	h, err := windows.CreateFile(name, windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		return in, func() {}
	}
	return int(h), func() { windows.CloseHandle(h) }
}
