//go:build unix

package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/gkessh/gkessh/internal/atomicfile"
)

// writeSecretFile writes a file that holds a secret (the env lines, a key
// file, the control header): 0600, whole, through a new temporary file
// beside it. It refuses a path where another local user could have put
// something for the emulator to write through or the user to read back: a
// symlink, a file that is not regular or not the user's, or a directory
// others may write that is not sticky (where they could swap the file
// after it is written).
func writeSecretFile(path string, data []byte) error {
	if err := checkSecretPath(path); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, atomicfile.Options{Perm: 0o600})
}

func checkSecretPath(path string) error {
	if fi, err := os.Lstat(path); err == nil {
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symlink: refusing to write a secret through it; name a new file in a directory of yours", path)
		case !fi.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file (%v)", path, fi.Mode().Type())
		case !ownedByMe(fi):
			return fmt.Errorf("%s belongs to uid %d, not to you: another user may have made it for you to read back; name a new file in a directory of yours", path, fi.Sys().(*syscall.Stat_t).Uid)
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if os.IsNotExist(err) {
		return nil // created 0700 by the write
	}
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("%s can be written by other users (%v) and is not sticky: one could replace %s; name a file in a directory of yours", dir, fi.Mode().Perm(), filepath.Base(path))
	}
	return nil
}
