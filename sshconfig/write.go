package sshconfig

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ReadOnlyError is a file its owner may not write: gkessh leaves it alone
// rather than replace it behind the owner's back.
type ReadOnlyError struct {
	Path string
	Mode fs.FileMode
}

func (e *ReadOnlyError) Error() string {
	return fmt.Sprintf("%s is read-only (%v): gkessh leaves it as it is; make it writable (chmod u+w) to let gkessh update it", e.Path, e.Mode.Perm())
}

// WriteFile replaces the file at path with data atomically: it writes a
// temporary file next to it and renames that into place, so neither a
// reader nor a full disk ever leaves it half written. A symlink at path is
// followed and its target replaced, so a dotfiles checkout stays linked. The
// file keeps its mode (a new one gets 0600, as ssh wants for its files); a
// file its owner may not write is refused with a *ReadOnlyError.
func WriteFile(path string, data []byte) error {
	target, err := followLink(path)
	if err != nil {
		return err
	}
	mode := fs.FileMode(0o600)
	if fi, err := os.Stat(target); err == nil {
		if fi.Mode().Perm()&0o200 == 0 {
			return &ReadOnlyError{Path: path, Mode: fi.Mode()}
		}
		mode = fi.Mode().Perm()
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), target)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// followLink returns the file a symlink at path points to, or path itself.
func followLink(path string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return path, nil
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("write %s: it is a symlink to nothing gkessh can write: %w", path, err)
	}
	return target, nil
}
