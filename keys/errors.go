package keys

import "errors"

// Errors a caller may want to advise on. They say what is wrong; what to
// do about it, in terms of its own flags and commands, is the caller's.

// ErrNoUser means there is no user name to grant the key to.
var ErrNoUser = errors.New("keys: no user name")

// KeyFileError is a key file that cannot be used as the user's key: Err
// says why, when there is an underlying error.
type KeyFileError struct {
	Path    string
	Problem string
	Err     error
	// Broken: the pair's files cannot be used as they are (a .pub without
	// its private key, a file ssh cannot parse, a .pub of another key);
	// Replace makes a new pair in their place.
	Broken bool
}

func (e *KeyFileError) Error() string {
	if e.Err == nil {
		return "keys: " + e.Problem
	}
	return "keys: " + e.Problem + ": " + e.Err.Error()
}

func (e *KeyFileError) Unwrap() error { return e.Err }
