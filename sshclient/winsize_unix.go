//go:build unix

package sshclient

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// watchSize calls resize with the terminal fd's new size on every
// SIGWINCH until done is closed. w and h, the size already sent, are for
// the polling variant.
func watchSize(done <-chan struct{}, fd, w, h int, resize func(w, h int)) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, unix.SIGWINCH)
	defer signal.Stop(winch)
	for {
		select {
		case <-done:
			return
		case <-winch:
			if nw, nh, err := term.GetSize(fd); err == nil {
				resize(nw, nh)
			}
		}
	}
}
