package pollio

import "golang.org/x/sys/unix"

// setPipeSize asks for a pipe buffer of size bytes, best effort: a
// socket, or a size over the user's limit, keeps what it has.
func setPipeSize(fd, size int) {
	unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, size)
}
