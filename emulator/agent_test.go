//go:build unix

package emulator

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/keys"
)

// agentRow is one row of testdata/guest-agent-ssh-keys.txt, the table of
// real lines that gkessh's keys package is held to as well.
type agentRow struct{ verdict, user, line string }

func agentTable(tb testing.TB) []agentRow {
	tb.Helper()
	data, err := os.ReadFile("../testdata/guest-agent-ssh-keys.txt")
	if err != nil {
		tb.Fatal(err)
	}
	pub := testkey.Fixed(tb, 0)
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
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

var agentTableNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// agentVerdict is what the emulator's agent does with one metadata line.
func agentVerdict(line string, now time.Time) (verdict, user string) {
	ls := agentLines(line)
	if len(ls) == 0 {
		return "skip", ""
	}
	k, err := agentParse(ls[0], now)
	switch {
	case errors.Is(err, errAgentExpired):
		return "expired", ""
	case err != nil:
		return "skip", ""
	}
	return "install", k.user
}

// TestAgentTable: the emulator's guest agent does with every real line
// what the table says Google's agent does.
func TestAgentTable(t *testing.T) {
	for _, r := range agentTable(t) {
		v, u := agentVerdict(r.line, agentTableNow)
		if v != r.verdict || (v == "install" && u != r.user) {
			t.Errorf("%q: %s %q; the agent: %s %q", r.line, v, u, r.verdict, r.user)
		}
	}
}

// FuzzAgentParse holds the emulator's agent and gkessh's keys.ParseLine,
// written apart, to the same verdict on any line: where they differ, one
// of them misreads the agent.
func FuzzAgentParse(f *testing.F) {
	for _, r := range agentTable(f) {
		f.Add(r.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.Contains(line, "\n") {
			return // one line at a time; agentLines splits values
		}
		v, u := agentVerdict(line, agentTableNow)
		if v == "install" && (u == "" || strings.ContainsAny(u, " \t\r\n\f")) {
			t.Fatalf("%q: installed for user %q", line, u)
		}
		l := keys.ParseLine(line)
		kv := "install"
		switch {
		case !l.Valid():
			kv = "skip"
		case l.Expired(agentTableNow):
			kv = "expired"
		}
		if kv != v || (v == "install" && l.User != u) {
			t.Fatalf("%q: emulator agent %s %q, keys.ParseLine %s %q (%v)", line, v, u, kv, l.User, l.Err)
		}
	})
}
