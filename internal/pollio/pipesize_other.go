//go:build unix && !linux

package pollio

// setPipeSize does nothing: only Linux lets a process size a pipe.
func setPipeSize(fd, size int) {}
