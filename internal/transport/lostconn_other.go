//go:build !windows

package transport

import (
	"errors"
	"syscall"
)

// connReset reports a connection reset by the peer, or written to after
// the peer closed it.
func connReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
