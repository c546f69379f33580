package keys

import "io/fs"

// othersMayRead is false: Windows has no such mode bits (Go makes them up
// from the read-only attribute); who may read a file is in its ACL.
func othersMayRead(fs.FileMode) bool { return false }
