//go:build !unix

package fleet

// openFileLimit: Windows limits handles per process far beyond what a
// run opens (16 million), and sockets are handles.
func openFileLimit() (uint64, bool) { return 0, false }
