// Package atomicfile writes files whole: a temporary file beside the
// target, synced, then renamed over it, so a reader, a crash or a full disk
// never leaves the target half written. Every file gkessh writes goes
// through it: ~/.ssh/config, known_hosts, key pairs, the token, zone and
// stamp caches, and the emulator's env and credential files.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Options say how WriteFile treats the file already at the path.
type Options struct {
	// Perm is the written file's mode (0600 when zero). A mode that lets
	// in no one but the owner is also an access list naming only the
	// current user on Windows, where mode bits do not restrict reading.
	Perm fs.FileMode
	// KeepMode keeps the mode of an existing file instead of Perm, and
	// refuses a file its owner may not write with a *ReadOnlyError:
	// a file someone made read-only is theirs to keep as it is.
	KeepMode bool
	// FollowSymlink replaces the target of a symlink at the path, so a
	// dotfiles checkout stays linked; a dangling link is an error.
	FollowSymlink bool
	// NoReplace fails with an error matching fs.ErrExist when the path
	// exists. The file is hard-linked into place, so two processes
	// creating it at once cannot each install half of what they meant.
	NoReplace bool
}

// ReadOnlyError is an existing file its owner may not write, which
// WriteFile with KeepMode leaves alone rather than replace behind the
// owner's back.
type ReadOnlyError struct {
	Path string
	Mode fs.FileMode
}

func (e *ReadOnlyError) Error() string {
	return fmt.Sprintf("%s is read-only (%v): gkessh leaves it as it is; make it writable (chmod u+w) to let gkessh update it", e.Path, e.Mode.Perm())
}

// WriteFile writes data to path as o says, creating path's directory (0700)
// if it is missing. Errors name path.
func WriteFile(path string, data []byte, o Options) error {
	target := path
	if o.FollowSymlink {
		var err error
		if target, err = followLink(path); err != nil {
			return err
		}
	}
	mode := o.Perm
	if mode == 0 {
		mode = 0o600
	}
	if o.KeepMode {
		if fi, err := os.Stat(target); err == nil {
			if fi.Mode().Perm()&0o200 == 0 {
				return &ReadOnlyError{Path: path, Mode: fi.Mode()}
			}
			mode = fi.Mode().Perm()
		}
	}
	if err := write(target, data, mode, o.NoReplace); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func write(target string, data []byte, mode fs.FileMode, noReplace bool) error {
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(target)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed; after a link, the temporary name goes
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil && mode&0o077 == 0 {
		err = ownerOnly(tmp)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if noReplace {
		return link(tmp, target)
	}
	return Rename(tmp, target)
}

// Rename puts a file written in full under a temporary name beside target
// into place, as WriteFile does with its own, for writers that stream what
// WriteFile would have to hold in memory (a file pulled from a node): on
// Windows it rides out a moment's refusal.
func Rename(tmp, target string) error {
	return retry(func() error { return os.Rename(tmp, target) })
}

// link puts tmp at target unless something is there already. Where hard
// links are not supported it falls back to a rename after a check, which
// only narrows the race.
func link(tmp, target string) error {
	err := os.Link(tmp, target)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, serr := os.Lstat(target); serr == nil {
		return fs.ErrExist
	}
	return Rename(tmp, target)
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
