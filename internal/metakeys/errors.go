package metakeys

import (
	"errors"
	"fmt"
)

// Errors a caller may want to advise on. They say what is wrong; what to
// do about it, in terms of its own flags and commands, is the caller's.

// The errors' texts start "keys:", as they did before they moved here:
// they are about the user's keys, wherever the lines live.

// ErrInstanceScopeNeedsInstance is the error for keys.ScopeInstance without
// an instance.
var ErrInstanceScopeNeedsInstance = errors.New("keys: instance scope needs an instance")

// ProjectKeysBlockedError is the error for keys.ScopeProject on an instance
// that ignores project keys.
type ProjectKeysBlockedError struct{ Instance string }

func (e *ProjectKeysBlockedError) Error() string {
	return fmt.Sprintf("keys: instance %s ignores project ssh keys (block-project-ssh-keys or legacy sshKeys is set)", e.Instance)
}

// ProjectWriteDeniedError is a refused write of project metadata: an
// instance's own metadata, with its own permission, may still be writable.
type ProjectWriteDeniedError struct{ Err error }

func (e *ProjectWriteDeniedError) Error() string { return e.Err.Error() }
func (e *ProjectWriteDeniedError) Unwrap() error { return e.Err }

// TooBigError refuses a metadata value over GCE's size limit, rather than
// dropping anyone's keys to make room.
type TooBigError struct {
	Key         string
	Size, Limit int
}

func (e *TooBigError) Error() string {
	return fmt.Sprintf("keys: metadata %s would be %d bytes, over GCE's limit of %d: remove keys nobody uses and try again", e.Key, e.Size, e.Limit)
}
