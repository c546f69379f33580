//go:build unix

package fleet

import "syscall"

// openFileLimit is the soft RLIMIT_NOFILE. Go's runtime has already
// raised it to one under the hard limit (syscall's init, go.dev/issue/
// 46279), so gkessh need not: TestOpenFileLimitRaised.
func openFileLimit() (uint64, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false
	}
	return uint64(lim.Cur), true
}
