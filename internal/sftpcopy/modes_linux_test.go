package sftpcopy

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// -p keeps mode and times both ways; without it, a new file gets the
// source's mode (less the umask) and a replaced file keeps its own.
func TestModesAndTimes(t *testing.T) {
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	atime := time.Date(2002, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, dir := range []string{"push", "pull"} {
		t.Run(dir, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			for _, n := range []string{"p", "new", "old"} {
				writeFile(t, filepath.Join(src, n), 100, 1)
				os.Chmod(filepath.Join(src, n), 0o751)
				os.Chtimes(filepath.Join(src, n), atime, mtime)
			}
			writeFile(t, filepath.Join(dst, "old"), 10, 2)
			os.Chmod(filepath.Join(dst, "old"), 0o600)
			var c *Client
			copyOne := func(name string, preserve bool) {
				t.Helper()
				var err error
				if dir == "push" {
					_, err = c.Push(context.Background(), []string{filepath.Join(src, name)}, name, Options{Preserve: preserve})
				} else {
					_, err = c.Pull(context.Background(), []string{name}, filepath.Join(dst, name), Options{Preserve: preserve})
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if dir == "push" {
				c = serveSFTP(t, osServer(dst))
			} else {
				c = serveSFTP(t, osServer(src))
			}
			copyOne("p", true)
			copyOne("new", false)
			copyOne("old", false)
			umask := syscall.Umask(0)
			syscall.Umask(umask)
			for _, tt := range []struct {
				name  string
				mode  fs.FileMode
				mtime bool
			}{{"p", 0o751, true}, {"new", 0o751 &^ fs.FileMode(umask), false}, {"old", 0o600, false}} {
				fi, err := os.Stat(filepath.Join(dst, tt.name))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != tt.mode {
					t.Errorf("%s: mode %v, want %v", tt.name, fi.Mode().Perm(), tt.mode)
				}
				if got := fi.ModTime().Equal(mtime); got != tt.mtime {
					t.Errorf("%s: mtime %v, kept = %v, want %v", tt.name, fi.ModTime(), got, tt.mtime)
				}
				// pkg/sftp's server sends the mtime as the atime.
				if tt.mtime && dir == "push" && !atimeOf(t, fi).Equal(atime) {
					t.Errorf("%s: atime %v, want %v", tt.name, atimeOf(t, fi), atime)
				}
			}
		})
	}
}

func atimeOf(t *testing.T, fi fs.FileInfo) time.Time {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Skip("no Stat_t")
	}
	return time.Unix(st.Atim.Unix())
}
