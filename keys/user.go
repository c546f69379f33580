package keys

import (
	"errors"
	"os"
	"os/user"
	"strings"
)

// DefaultUser is the user name to put in metadata when --user is not given:
// the local login name when every guest agent accepts it as is, else that
// name sanitized the way gcloud sanitizes an account name.
func DefaultUser() (string, error) {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		// Containers often run as a uid with no passwd entry.
		name = os.Getenv("USER")
	}
	// Windows names come as DOMAIN\user.
	name = name[strings.LastIndex(name, `\`)+1:]
	if name == "" {
		return "", errors.New("keys: cannot tell the local user name: pass --user")
	}
	return SanitizeUser(name), nil
}

// SanitizeUser makes name a user name every guest agent accepts. A valid
// name is kept; otherwise, as gcloud does for account names: lowercase,
// characters other than letters and digits become '_', a 'g' is prepended
// when it does not start with a letter, and it is cut to 32 characters.
func SanitizeUser(name string) string {
	if pythonUser.MatchString(name) {
		return name
	}
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		s = "g" + s
	}
	return s[:min(len(s), 32)]
}
