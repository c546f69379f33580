package sshconfig

import (
	"runtime"
	"strings"

	"github.com/gkessh/gkessh/internal/shellquote"
)

// ssh reads its config differently on each OS in two places:
//
//   - ProxyCommand: OpenSSH on unix runs it with sh -c, so its words are
//     quoted for a POSIX shell; Windows OpenSSH hands it to CreateProcess,
//     where only double quotes group, by CommandLineToArgvW's rules.
//   - Paths: every OpenSSH splits an option's value into words itself
//     (double quotes group, backslash escapes a quote or a backslash) and
//     expands %-tokens in IdentityFile, UserKnownHostsFile and
//     ProxyCommand, so a path with a space or % must be quoted and
//     escaped. Windows paths are written with forward slashes, which
//     Windows OpenSSH takes and which need no escaping.
//
// The OS is a parameter of the helpers below so that each OS's rules are
// tested on every OS.

// CommandArg quotes one word of a ProxyCommand for this OS's ssh.
func CommandArg(s string) string { return commandArg(runtime.GOOS, s) }

// Path writes a file path as the value of IdentityFile,
// UserKnownHostsFile and the like, for this OS's ssh.
func Path(s string) string { return path(runtime.GOOS, s) }

func commandArg(goos, s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if goos == "windows" {
		return windowsArg(strings.ReplaceAll(s, `\`, "/"))
	}
	return shellquote.Quote(s)
}

func path(goos, s string) string {
	if goos == "windows" {
		s = strings.ReplaceAll(s, `\`, "/")
	}
	s = strings.ReplaceAll(s, "%", "%%")
	if s != "" && !strings.ContainsAny(s, " \t\"'\\#=") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// windowsArg quotes s so that CommandLineToArgvW, which Go and the C
// runtime use to split a command line, gives it back: backslashes are
// literal except before a double quote, where they are doubled.
func windowsArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, slashes+1)) // double them, and escape the quote
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteByte(s[i])
	}
	b.WriteString(strings.Repeat(`\`, slashes)) // before the closing quote
	b.WriteByte('"')
	return b.String()
}
