package keys

import (
	"strings"
	"testing"

	"github.com/gkessh/gkessh/internal/agenttable"
	"github.com/gkessh/gkessh/internal/testkey"
)

// TestParseLineAgentTable: ParseLine says of every real line what the Go
// guest agent does with it, and keys list --audit reports it.
func TestParseLineAgentTable(t *testing.T) {
	for _, r := range agenttable.Read(t, "../testdata/guest-agent-ssh-keys.txt") {
		l := ParseLine(r.Line)
		var got string
		switch {
		case !l.Valid():
			got = "skip"
		case l.Expired(agenttable.Now):
			got = "expired"
		default:
			got = "install"
		}
		if got != r.Verdict || (got == "install" && l.User != r.User) {
			t.Errorf("%q: %s user %q (err %v); the agent: %s %q", r.Line, got, l.User, l.Err, r.Verdict, r.User)
		}
		entries := []Entry{{Scope: ScopeInstance, Item: MetadataKey, LineNo: 1, Line: l}}
		Audit(entries, agenttable.Now)
		said := strings.Join(entries[0].Problems, "; ")
		skipped := strings.Contains(said, "the guest agent skips this line") || strings.Contains(said, "the guest agent cannot create its user")
		if want := r.Verdict == "skip"; skipped != want {
			t.Errorf("%q: audit says %q; the agent skips it: %v", r.Line, said, want)
		}
		if r.Verdict == "install" && PythonAgentSkips(r.User) && !strings.Contains(said, "Python") {
			t.Errorf("%q: audit says %q, not that the Python daemon skips user %q", r.Line, said, r.User)
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
		entries := []Entry{{Scope: ScopeInstance, Item: MetadataKey, LineNo: 1, Line: ParseLine(tc.user + ":" + key)}}
		Audit(entries, agenttable.Now)
		if said := strings.Join(entries[0].Problems, "; "); !strings.HasPrefix(said, tc.want) {
			t.Errorf("user %q: audit says %q, want %q...", tc.user, said, tc.want)
		}
	}
}
