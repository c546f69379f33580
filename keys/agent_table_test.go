package keys

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/testkey"
)

// agentRow is one row of testdata/guest-agent-ssh-keys.txt, which the
// emulator's independent guest agent reads too.
type agentRow struct {
	verdict string // install, expired or skip
	user    string // for install
	line    string
}

// agentTable reads the shared table with $KEY replaced by a fixed key.
func agentTable(tb testing.TB) []agentRow {
	tb.Helper()
	data, err := os.ReadFile("../testdata/guest-agent-ssh-keys.txt")
	if err != nil {
		tb.Fatal(err)
	}
	pub := testkey.Fixed(tb, 0)
	key := authorizedKey(pub)
	var rows []agentRow
	for _, l := range strings.Split(string(data), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		verdict, line, ok := strings.Cut(l, "\t")
		if !ok {
			tb.Fatalf("table row without a tab: %q", l)
		}
		verdict, user, _ := strings.Cut(verdict, ":")
		rows = append(rows, agentRow{verdict, user, strings.ReplaceAll(line, "$KEY", key)})
	}
	return rows
}

// agentTableNow is between the table's past (2001) and future (2099).
var agentTableNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// TestParseLineAgentTable: ParseLine says of every real line what the Go
// guest agent does with it, and keys list --audit reports it.
func TestParseLineAgentTable(t *testing.T) {
	for _, r := range agentTable(t) {
		l := ParseLine(r.line)
		var got string
		switch {
		case !l.Valid():
			got = "skip"
		case l.Expired(agentTableNow):
			got = "expired"
		default:
			got = "install"
		}
		if got != r.verdict || (got == "install" && l.User != r.user) {
			t.Errorf("%q: %s user %q (err %v); the agent: %s %q", r.line, got, l.User, l.Err, r.verdict, r.user)
		}
		entries := []Entry{{Scope: ScopeInstance, Key: MetadataKey, N: 1, Line: l}}
		Audit(entries, agentTableNow)
		said := strings.Join(entries[0].Problems, "; ")
		skipped := strings.Contains(said, "the guest agent skips this line") || strings.Contains(said, "the guest agent cannot create its user")
		if want := r.verdict == "skip"; skipped != want {
			t.Errorf("%q: audit says %q; the agent skips it: %v", r.line, said, want)
		}
		if r.verdict == "install" && PythonAgentSkips(r.user) && !strings.Contains(said, "Python") {
			t.Errorf("%q: audit says %q, not that the Python daemon skips user %q", r.line, said, r.user)
		}
	}
}

// TestAuditSaysWhoRefuses: audit blames the guest agent for the names it
// skips (empty, whitespace) and useradd for those the agent takes but
// cannot make an account for, as the table's rows say.
func TestAuditSaysWhoRefuses(t *testing.T) {
	key := authorizedKey(testkey.Fixed(t, 0))
	for _, tc := range []struct{ user, want string }{
		{"bad user", "the guest agent skips this line: "},
		{"", "the guest agent skips this line: "},
		{"-x", "the guest agent cannot create its user: "},
		{"a/b", "the guest agent cannot create its user: "},
		{"..", "the guest agent cannot create its user: "},
	} {
		entries := []Entry{{Scope: ScopeInstance, Key: MetadataKey, N: 1, Line: ParseLine(tc.user + ":" + key)}}
		Audit(entries, agentTableNow)
		if said := strings.Join(entries[0].Problems, "; "); !strings.HasPrefix(said, tc.want) {
			t.Errorf("user %q: audit says %q, want %q...", tc.user, said, tc.want)
		}
	}
}
