//go:build !windows

package transport

import "syscall"

// lostErrnos are how this OS says a connection was lost: reset by the
// peer, or written to after the peer closed it.
var lostErrnos = []syscall.Errno{syscall.ECONNRESET, syscall.EPIPE}
