package cli

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable escapes what a terminal would act on instead of showing:
// control characters (ESC, CR, tab, newline…), format characters such as
// bidi overrides and zero-width spaces, and invalid UTF-8, as Go escapes
// (\x1b, \u202e). Text from metadata or an API answer then cannot erase a
// table row, move the cursor or pose as another row.
func printable(s string) string {
	if !strings.ContainsFunc(s, actedOn) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
		case actedOn(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// printableLines is printable for a message of several lines: its
// newlines stay.
func printableLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = printable(l)
	}
	return strings.Join(lines, "\n")
}

func actedOn(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }
