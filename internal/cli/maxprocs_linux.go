package cli

import (
	"os"
	"runtime"
)

// oneProc runs the proxy's copying on one P, unless GOMAXPROCS is set, and
// returns what puts the old value back. One stream needs one thread running
// Go at a time; more make the scheduler spin between hand-offs, and on a
// small machine that CPU is taken from ssh itself. Measured on Linux only,
// where the stdio pipes go through the network poller.
func oneProc() (restore func()) {
	if os.Getenv("GOMAXPROCS") != "" {
		return func() {}
	}
	old := runtime.GOMAXPROCS(1)
	return func() { runtime.GOMAXPROCS(old) }
}
