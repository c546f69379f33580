package cli

import "fmt"

// osLoginUserError is a proxy asked to log in to an OS Login node as a user
// other than the profile's POSIX user: the node would refuse the key only
// after the whole propagation wait.
type osLoginUserError struct{ Node, User, Posix string }

func (e *osLoginUserError) Error() string {
	return fmt.Sprintf("%s is under OS Login, which logs you in as %s, your profile's POSIX user, not as %s", e.Node, e.Posix, e.User)
}
