// Package agenttable reads, for tests, testdata/guest-agent-ssh-keys.txt:
// real ssh-keys lines and what Google's guest agent does with each. gkessh's
// keys package and the emulator's own guest agent are both held to it; the
// table is the one thing they share.
package agenttable

import (
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/testkey"
)

// Row is one line of the table.
type Row struct {
	Verdict string // install, expired or skip
	User    string // for install
	Line    string // the ssh-keys line, $KEY replaced by testkey.Fixed(tb, 0)
}

// Now is the time to judge the rows at: between the table's past (2001)
// and its future (2099).
var Now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// Read reads the table at path (a test's own relative path to it).
func Read(tb testing.TB, path string) []Row {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(testkey.Fixed(tb, 0))))
	var rows []Row
	for _, l := range strings.Split(string(data), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		verdict, line, ok := strings.Cut(l, "\t")
		if !ok {
			tb.Fatalf("table row without a tab: %q", l)
		}
		verdict, user, _ := strings.Cut(verdict, ":")
		rows = append(rows, Row{verdict, user, strings.ReplaceAll(line, "$KEY", key)})
	}
	return rows
}
