package transport

import "syscall"

// lostErrnos are how Winsock says a connection was lost: reset by the
// peer, or aborted after the peer closed it.
var lostErrnos = []syscall.Errno{syscall.WSAECONNRESET, syscall.WSAECONNABORTED}
