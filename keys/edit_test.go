package keys

import (
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/testkey"
)

func TestUpsert(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	mine, other := testkey.Fixed(t, 10), testkey.Fixed(t, 11)
	exp := func(user string, d time.Duration) string { return FormatExpiringLine(user, mine, now.Add(d)) }
	perm := FormatLine("alice", mine, "")
	bob := FormatLine("bob", other, "bob@laptop")
	newLine := exp("alice", 24*time.Hour)
	tests := []struct {
		name        string
		value       string
		expireAfter time.Duration
		want        string // "" = unchanged
		comment     string
	}{
		{"empty", "", 24 * time.Hour, newLine, ""},
		{"append after others", bob, 24 * time.Hour, bob + "\n" + newLine, ""},
		{"before trailing newline", bob + "\n", 24 * time.Hour, bob + "\n" + newLine + "\n", ""},
		{"present permanent", bob + "\n" + perm, 24 * time.Hour, "", ""},
		{"present fresh", exp("alice", 20*time.Hour) + "\n" + bob, 24 * time.Hour, "", ""},
		{"about to expire is replaced in order", exp("alice", 30*time.Minute) + "\n" + bob, 24 * time.Hour, bob + "\n" + newLine, ""},
		{"expired is replaced", exp("alice", -time.Hour) + "\n" + bob, 24 * time.Hour, bob + "\n" + newLine, ""},
		{"older lines of the same key go", exp("alice", 10*time.Minute) + "\n" + exp("alice", 20*time.Minute) + "\n" + bob, 24 * time.Hour, bob + "\n" + newLine, ""},
		{"another key's expired line under my name stays", FormatExpiringLine("alice", other, now.Add(-time.Second)) + "\n" + bob, 24 * time.Hour,
			FormatExpiringLine("alice", other, now.Add(-time.Second)) + "\n" + bob + "\n" + newLine, ""},
		{"my other live key stays", FormatExpiringLine("alice", other, now.Add(time.Hour)), 24 * time.Hour, FormatExpiringLine("alice", other, now.Add(time.Hour)) + "\n" + newLine, ""},
		{"someone else's expired line stays", exp("carol", -time.Hour), 24 * time.Hour, exp("carol", -time.Hour) + "\n" + newLine, ""},
		{"same key other user is not mine", exp("carol", 20*time.Hour), 24 * time.Hour, exp("carol", 20*time.Hour) + "\n" + newLine, ""},
		{"malformed lines kept verbatim", "junk line\r\n\n  root:ssh-rsa AAAA  \n" + bob, 24 * time.Hour, "junk line\r\n\n  root:ssh-rsa AAAA  \n" + bob + "\n" + newLine, ""},
		{"permanent wanted over expiring", exp("alice", 20*time.Hour) + "\n" + bob, 0, bob + "\n" + perm, ""},
		{"permanent wanted and present", perm, 0, "", ""},
		{"permanent keeps the comment", bob, 0, bob + "\n" + FormatLine("alice", mine, "alice@laptop"), "alice@laptop"},
		{"an expiring line has none", bob, 24 * time.Hour, bob + "\n" + newLine, "alice@laptop"},
		{"present without the comment", perm, 0, "", "alice@laptop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, line := Upsert(ParseLines(tt.value), "alice", mine, tt.comment, now, tt.expireAfter, false)
			got := JoinLines(lines)
			if tt.want == "" {
				if line != "" || got != tt.value {
					t.Fatalf("wrote %q, value now %q; want no change", line, got)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("value\n%s\nwant\n%s", got, tt.want)
			}
			if !strings.Contains(got, line) || !ParseLine(line).Valid() {
				t.Fatalf("returned line %q is not valid or not in the value", line)
			}
		})
	}
}

func TestRefreshMargin(t *testing.T) {
	for _, tt := range []struct{ after, want time.Duration }{
		{24 * time.Hour, time.Hour},
		{5 * time.Hour, 30 * time.Minute},
		{10 * time.Minute, time.Minute},
		{0, 0},
	} {
		if got := RefreshMargin(tt.after); got != tt.want {
			t.Errorf("RefreshMargin(%v) = %v, want %v", tt.after, got, tt.want)
		}
	}
}

func TestSelectors(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	k1, k2 := testkey.Fixed(t, 20), testkey.Fixed(t, 21)
	lines := []string{
		FormatExpiringLine("alice", k1, now.Add(-time.Hour)),  // 0 alice expired
		FormatExpiringLine("alice", k1, now.Add(time.Hour)),   // 1 alice stale: line 2 outlives it
		FormatExpiringLine("alice", k1, now.Add(2*time.Hour)), // 2 alice newest
		FormatLine("alice", k2, ""),                           // 3 alice permanent other key
		FormatExpiringLine("bob", k2, now.Add(-time.Minute)),  // 4 bob expired
		"garbage", // 5
		FormatExpiringLine("bob", k2, now.Add(time.Hour)),   // 6 bob live
		FormatExpiringLine("carol", k1, now.Add(time.Hour)), // 7 carol, same key as alice
		FormatExpiringLine("carol", k1, now.Add(time.Hour)), // 8 carol exact duplicate of 7
	}
	tests := []struct {
		name string
		sel  Selector
		want []int
	}{
		{"alice's expired and stale", ExpiredLines("alice", nil, now), []int{0, 1}},
		{"alice's expired and stale, key k1", ExpiredLines("alice", k1, now), []int{0, 1}},
		{"alice's with key k2: none expired", ExpiredLines("alice", k2, now), nil},
		{"bob's with alice's key k1: not his", ExpiredLines("bob", k1, now), nil},
		{"bob's with k2", ExpiredLines("bob", k2, now), []int{4}},
		{"carol's duplicate: the earlier goes", ExpiredLines("carol", nil, now), []int{7}},
		{"everyone's expired", ExpiredLines("", nil, now), []int{0, 4}},
		{"all of bob", UserLines("bob", nil), []int{4, 6}},
		{"alice's k1", UserLines("alice", k1), []int{0, 1, 2}},
		{"nobody", UserLines("dave", nil), nil},
	}
	parsed := ParseLines(strings.Join(lines, "\n"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept, gone := RemoveLines(parsed, tt.sel)
			var got []int
			for i := range parsed {
				if tt.sel(i, parsed) {
					got = append(got, i)
				}
			}
			if len(got) != len(tt.want) || len(gone) != len(tt.want) || len(kept)+len(gone) != len(parsed) {
				t.Fatalf("picked %v (gone %d), want %v", got, len(gone), tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("picked %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestUpsertExactLifetime: a lifetime the user asked for is honoured: a
// line that outlives it is replaced by the shorter one, a shorter one is
// extended, and one that expires about when asked stays. A permanent line
// stays: it is no one's to shorten uninvited. Without the request any line
// that lasts will do.
func TestUpsertExactLifetime(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	mine := testkey.Fixed(t, 10)
	exp := func(d time.Duration) string { return FormatExpiringLine("alice", mine, now.Add(d)) }
	for _, tt := range []struct {
		name        string
		value       string
		expireAfter time.Duration
		exact       bool
		want        string // "" = unchanged
	}{
		{"24h line, 30m asked: shortened", exp(24 * time.Hour), 30 * time.Minute, true, exp(30 * time.Minute)},
		{"24h line, 30m by default: kept", exp(24 * time.Hour), 30 * time.Minute, false, ""},
		{"20h left, 48h asked: extended", exp(20 * time.Hour), 48 * time.Hour, true, exp(48 * time.Hour)},
		{"about 30m left, 30m asked: kept", exp(29 * time.Minute), 30 * time.Minute, true, ""},
		{"23h30 left, 24h asked: kept", exp(23*time.Hour + 30*time.Minute), 24 * time.Hour, true, ""},
		{"permanent, 30m asked: kept", FormatLine("alice", mine, ""), 30 * time.Minute, true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lines, line := Upsert(ParseLines(tt.value), "alice", mine, "", now, tt.expireAfter, tt.exact)
			got := JoinLines(lines)
			if tt.want == "" {
				if line != "" || got != tt.value {
					t.Fatalf("wrote %q; want no change", line)
				}
				return
			}
			if got != tt.want || line != tt.want {
				t.Fatalf("value %q, line %q; want %q", got, line, tt.want)
			}
		})
	}
}
