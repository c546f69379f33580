//go:build !windows

package atomicfile

// transient is false: a POSIX rename replaces a file others hold open.
func transient(error) bool { return false }
