package sftpcopy

import (
	"io/fs"
	"syscall"
	"time"
)

// atime is a local file's access time, kept by Preserve as scp -p keeps it.
func atime(fi fs.FileInfo) time.Time {
	if d, ok := fi.Sys().(*syscall.Win32FileAttributeData); ok {
		return time.Unix(0, d.LastAccessTime.Nanoseconds())
	}
	return fi.ModTime()
}
