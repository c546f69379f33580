package sshconfig

import "github.com/gkessh/gkessh/internal/atomicfile"

// WriteFile replaces the file at path with data atomically, as ssh's own
// files are kept: a temporary file next to it is synced and renamed into
// place, so neither a reader nor a full disk ever leaves it half written.
// A symlink at path is followed and its target replaced, so a dotfiles
// checkout stays linked. The file keeps its mode (a new one gets 0600, as
// ssh wants for its files); a file its owner may not write is refused
// with an *atomicfile.ReadOnlyError.
func WriteFile(path string, data []byte) error {
	return atomicfile.WriteFile(path, data, atomicfile.Options{KeepMode: true, FollowSymlink: true})
}
