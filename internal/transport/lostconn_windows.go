package transport

import (
	"errors"
	"syscall"
)

// connReset reports a connection reset by the peer, or written to after
// the peer closed it. Winsock says so with its own codes, which Go's net
// returns as they are: syscall.ECONNRESET and EPIPE are values Go invents
// on Windows, and no socket error matches them.
func connReset(err error) bool {
	return errors.Is(err, syscall.WSAECONNRESET) || errors.Is(err, syscall.WSAECONNABORTED)
}
