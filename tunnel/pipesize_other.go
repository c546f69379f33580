//go:build unix && !linux

package tunnel

// setPipeSize does nothing: only Linux lets a process size a pipe.
func setPipeSize(fd, size int) {}
