// Package shellquote writes words for a POSIX shell (sh, and the shlex
// splitting Ansible and Python use) so that the shell gives them back as
// they were: the remote command of `gkessh NODE -- WORDS`, the ProxyCommand
// in ~/.ssh/config, Ansible's ssh arguments and the fix lines `gkessh audit`
// prints for a person to paste.
package shellquote

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Quote returns s as one shell word: as it is when every byte is one the
// shell takes literally anywhere in a command line, else in single quotes
// (a single quote inside closes them, is escaped and reopens them). A word
// that could be taken for a variable assignment (NAME=...) is quoted, so it
// stays a word wherever it lands.
func Quote(s string) string {
	if s != "" && strings.Trim(s, safe) == "" && !assignment(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// safe are the bytes no POSIX shell treats specially: letters, digits and
// @%+=:,./_- (not at the start: ~; nowhere: spaces, quotes, $ ` \ ; & | < >
// ( ) * ? [ ] # ! { }).
const safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-"

// assignment reports whether s starts NAME=, which sh reads as a variable
// assignment in a command's first words.
func assignment(s string) bool {
	name, _, ok := strings.Cut(s, "=")
	if !ok || name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	return strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == ""
}

// Join quotes each word and joins them with spaces.
func Join(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = Quote(w)
	}
	return strings.Join(q, " ")
}

// Line is Join for a command line a person reads and pastes. ok is false
// when a word holds what a terminal does not show as it is (control or
// format characters such as newlines or bidirectional overrides, or
// invalid UTF-8): quoting keeps the shell safe, but the person would paste
// something other than what they read.
func Line(words ...string) (line string, ok bool) {
	for _, w := range words {
		if !utf8.ValidString(w) || strings.ContainsFunc(w, hidden) {
			return "", false
		}
	}
	return Join(words...), true
}

func hidden(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }
