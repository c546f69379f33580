//go:build unix

package emulator

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/agenttable"
	"github.com/gkessh/gkessh/keys"
)

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
	for _, r := range agenttable.Read(t, "../testdata/guest-agent-ssh-keys.txt") {
		v, u := agentVerdict(r.Line, agenttable.Now)
		if v != r.Verdict || (v == "install" && u != r.User) {
			t.Errorf("%q: %s %q; the agent: %s %q", r.Line, v, u, r.Verdict, r.User)
		}
	}
}

// FuzzAgentParse holds the emulator's agent and gkessh's keys.ParseLine,
// written apart, to the same verdict on any line: where they differ, one
// of them misreads the agent.
func FuzzAgentParse(f *testing.F) {
	for _, r := range agenttable.Read(f, "../testdata/guest-agent-ssh-keys.txt") {
		f.Add(r.Line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.Contains(line, "\n") {
			return // one line at a time; agentLines splits values
		}
		v, u := agentVerdict(line, agenttable.Now)
		if v == "install" && (u == "" || strings.ContainsAny(u, " \t\r\n\f")) {
			t.Fatalf("%q: installed for user %q", line, u)
		}
		l := keys.ParseLine(line)
		kv := "install"
		switch {
		case !l.Valid():
			kv = "skip"
		case l.Expired(agenttable.Now):
			kv = "expired"
		}
		if kv != v || (v == "install" && l.User != u) {
			t.Fatalf("%q: emulator agent %s %q, keys.ParseLine %s %q (%v)", line, v, u, kv, l.User, l.Err)
		}
	})
}
