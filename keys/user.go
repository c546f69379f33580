package keys

import (
	"fmt"
	"os"
	"os/user"
	"strings"
	"unicode"
)

// LocalUser is the local login name as gcloud reads it (Python's
// getpass.getuser): LOGNAME, USER, LNAME or USERNAME as they are, else the
// account database (dbName: on Windows without its DOMAIN\ prefix).
func LocalUser() (string, error) {
	name := ""
	for _, v := range []string{"LOGNAME", "USER", "LNAME", "USERNAME"} {
		if name = os.Getenv(v); name != "" {
			break
		}
	}
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = dbName(u.Username)
		}
	}
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
// '@', lowercased as Python does (pyLower), every character that is not a letter or digit made '_',
// a 'g' in front unless it starts with a letter, cut to 32 characters.
// Letters and digits are Unicode ones, as in Python.
func AccountUser(email string) (string, error) {
	local, _, _ := strings.Cut(email, "@")
	if local == "" {
		return "", fmt.Errorf("keys: invalid account e-mail %q", email)
	}
	rs := []rune(pyLower(local))
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

// pyLower is Python's str.lower(), which gcloud's gaia.py applies to the
// account: Unicode's full lower-case mapping. It differs from
// strings.ToLower in two places: U+0130 (İ) becomes "i\u0307" (an i and a
// combining dot, which then becomes '_'), and a capital sigma that ends a
// word becomes 'ς' (Final_Sigma, as CPython's handle_capital_sigma).
func pyLower(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch r {
		case '\u0130':
			b.WriteString("i\u0307")
		case 'Σ':
			if finalSigma(rs, i) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma: rs[i] follows a cased letter and is not followed by one,
// case-ignorable characters between not counting (Unicode's Final_Sigma).
func finalSigma(rs []rune, i int) bool {
	j := i - 1
	for j >= 0 && caseIgnorable(rs[j]) {
		j--
	}
	if j < 0 || !cased(rs[j]) {
		return false
	}
	j = i + 1
	for j < len(rs) && caseIgnorable(rs[j]) {
		j++
	}
	return j == len(rs) || !cased(rs[j])
}

// cased is Unicode's Cased property.
func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

// caseIgnorable is Unicode's Case_Ignorable property: marks, format
// characters, modifiers, and the Word_Break MidLetter, MidNumLet and
// Single_Quote characters (listed: Go has no Word_Break table).
func caseIgnorable(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) ||
		strings.ContainsRune(":\u00b7\u0387\u055f\u05f4\u2027\ufe13\ufe55\uff1a"+".\u2018\u2019\u2024\ufe52\uff07\uff0e"+"'", r)
}
