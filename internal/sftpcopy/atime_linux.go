package sftpcopy

import (
	"io/fs"
	"syscall"
	"time"
)

// atime is a local file's access time, kept by Preserve as scp -p keeps it.
func atime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Atim.Unix())
	}
	return fi.ModTime()
}
