package access

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/gkessh/gkessh/keys"
)

// shellMeta are the characters OpenSSH refuses in a user name (ssh.c
// valid_ruser), with '$' and '\\': the name also goes into ssh configs,
// ProxyCommand's %r and Ansible's shell-quoted arguments.
const shellMeta = "'`\";&<>|(){}$\\"

// CheckUser is the one rule for a user name gkessh logs in as, whoever
// chose it (a flag, the environment, an OS Login profile): not empty, no
// control characters (a newline would start a new ssh_config line), no
// shell metacharacters, and none of what the guest agent would skip or a
// ':' that would end it early in ssh-keys.
func CheckUser(u string) error {
	if u == "" {
		return errors.New("empty user name")
	}
	if strings.ContainsFunc(u, unicode.IsControl) || strings.ContainsAny(u, shellMeta) {
		return fmt.Errorf("control or shell characters (%s) in a user name", shellMeta)
	}
	return keys.CheckUser(u)
}

// BadPosixUserError is an OS Login profile whose POSIX user name fails
// CheckUser: the node is not logged in to, and no config names that user.
type BadPosixUserError struct {
	Account, User string
	Err           error
}

func (e *BadPosixUserError) Error() string {
	return fmt.Sprintf("the OS Login profile of %s gives the POSIX user %q, which is refused: %v", e.Account, e.User, e.Err)
}

func (e *BadPosixUserError) Unwrap() error { return e.Err }
