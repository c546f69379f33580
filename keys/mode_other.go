//go:build !windows

package keys

import "io/fs"

// othersMayRead reports mode bits that let group or others read a file.
func othersMayRead(m fs.FileMode) bool { return m&0o077 != 0 }
