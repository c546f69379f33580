package pollio

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// Pollable gives a non-blocking twin of a blocking pipe, with the
// buffer asked for, and restores blocking mode after.
func TestPollable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int
		wantSize int
	}{
		{"from ssh: enlarged", 1 << 20, 1 << 20},
		{"to ssh: default", 0, 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close()
			fd := int(r.Fd()) // leaves r in blocking mode, as ssh gives it
			twin, restore := Pollable(r, tc.size)
			if twin == nil {
				t.Fatal("no twin for a blocking pipe")
			}
			flags, _ := unix.FcntlInt(twin.Fd(), unix.F_GETFL, 0)
			size, _ := unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0)
			if flags&unix.O_NONBLOCK == 0 || size != tc.wantSize {
				t.Errorf("twin: non-blocking %v, pipe buffer %d; want true, %d", flags&unix.O_NONBLOCK != 0, size, tc.wantSize)
			}
			restore()
			if flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); flags&unix.O_NONBLOCK != 0 {
				t.Error("restore left the pipe non-blocking")
			}
		})
	}
}
