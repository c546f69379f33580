package keys

import (
	"fmt"
	"os"
	"os/user"
	"strings"
	"unicode"
)

// LocalUser is the local login name as gcloud reads it (Python's
// getpass.getuser): LOGNAME, USER, LNAME or USERNAME, else the account
// database; a Windows DOMAIN\ prefix is dropped.
func LocalUser() (string, error) {
	name := ""
	for _, v := range []string{"LOGNAME", "USER", "LNAME", "USERNAME"} {
		if name = os.Getenv(v); name != "" {
			break
		}
	}
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	name = name[strings.LastIndex(name, `\`)+1:]
	if name == "" {
		return "", fmt.Errorf("%w: cannot tell the local login name", ErrNoUser)
	}
	return name, nil
}

// LocalUserUsable reports whether gcloud uses the local login name as the
// remote user unchanged: it is ASCII with no spaces.
func LocalUserUsable(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r >= 0x80 || r == ' ' {
			return false
		}
	}
	return true
}

// maxAccountUser is the length gcloud cuts an account's user name to.
const maxAccountUser = 32

// AccountUser is the user name gcloud derives from its account e-mail when
// the local login name will not do (gcloud's gaia.py): the part before the
// '@', lowercased, every character that is not a letter or digit made '_',
// a 'g' in front unless it starts with a letter, cut to 32 characters.
// Letters and digits are Unicode ones, as in Python.
func AccountUser(email string) (string, error) {
	local, _, _ := strings.Cut(email, "@")
	if local == "" {
		return "", fmt.Errorf("keys: invalid account e-mail %q", email)
	}
	rs := []rune(strings.ToLower(local))
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsNumber(r) {
			rs[i] = '_'
		}
	}
	if !unicode.IsLetter(rs[0]) {
		rs = append([]rune{'g'}, rs...)
	}
	return string(rs[:min(len(rs), maxAccountUser)]), nil
}

// RemoteUser is the user gcloud logs in as when none is given: local when
// LocalUserUsable, else AccountUser of the gcloud account, which account
// reads only then.
func RemoteUser(local string, account func() (string, error)) (string, error) {
	if LocalUserUsable(local) {
		return local, nil
	}
	email, err := account()
	if err != nil {
		return "", err
	}
	if email == "" {
		return "", fmt.Errorf("%w: the local user name %q is not ASCII without spaces and no gcloud account is set (core/account) to derive one from, as gcloud does", ErrNoUser, local)
	}
	return AccountUser(email)
}
