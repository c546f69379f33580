package keys

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/testkey"
)

func TestParseLine(t *testing.T) {
	k := authorizedKey(testkey.Fixed(t, 1))
	tests := []struct {
		name    string
		raw     string
		user    string
		valid   bool
		comment string
		expire  string
	}{
		{"permanent", "alice:" + k + " alice@laptop", "alice", true, "alice@laptop", ""},
		{"no comment", "bob:" + k, "bob", true, "", ""},
		{"surrounding space", "  bob:" + k + "  ", "bob", true, "", ""},
		{"expiring gcloud form", "nat:" + k + ` google-ssh {"userName":"nat","expireOn":"2026-11-28T12:00:00+0000"}`, "nat", true, "", "2026-11-28T12:00:00Z"},
		{"expiring rfc3339", "nat:" + k + ` google-ssh {"userName":"nat@x.com","expireOn":"2026-11-28T12:00:00Z"}`, "nat", true, "", "2026-11-28T12:00:00Z"},
		{"expiring bad json", "nat:" + k + ` google-ssh {bad`, "nat", false, "", ""},
		{"expiring no expireOn", "nat:" + k + ` google-ssh {"userName":"nat"}`, "nat", false, "", ""},
		{"expiring bad time", "nat:" + k + ` google-ssh {"expireOn":"tomorrow"}`, "nat", false, "", ""},
		{"no user", k, "", false, "", ""},
		{"bad user", "al ice:" + k, "al ice", false, "", ""},
		{"long user: the Go agent takes it", strings.Repeat("a", 33) + ":" + k, strings.Repeat("a", 33), true, "", ""},
		{"bad key", "alice:ssh-ed25519 AAAA", "alice", false, "", ""},
		{"blank", "", "", false, "", ""},
		{"options", "carol:restrict " + k, "carol", true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ParseLine(tt.raw)
			if l.Raw != tt.raw || l.User != tt.user || l.Valid() != tt.valid {
				t.Fatalf("ParseLine(%q) = raw %q user %q valid %v (%v); want user %q valid %v", tt.raw, l.Raw, l.User, l.Valid(), l.Err, tt.user, tt.valid)
			}
			if tt.comment != "" && l.Comment != tt.comment {
				t.Errorf("comment %q, want %q", l.Comment, tt.comment)
			}
			var got string
			if l.Expiring() {
				got = l.ExpireOn.UTC().Format(time.RFC3339)
			}
			if got != tt.expire {
				t.Errorf("expireOn %q, want %q", got, tt.expire)
			}
		})
	}
}

func TestFormatExpiringLineMatchesGcloud(t *testing.T) {
	key := testkey.Fixed(t, 2)
	exp := time.Date(2026, 11, 28, 12, 0, 0, 0, time.FixedZone("JST", 9*3600))
	got := FormatExpiringLine("nat", key, exp)
	want := "nat:" + authorizedKey(key) + ` google-ssh {"userName":"nat","expireOn":"2026-11-28T03:00:00+0000"}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	l := ParseLine(got)
	if !l.Valid() || !l.ExpireOn.Equal(exp) {
		t.Fatalf("round trip: %+v", l)
	}
	// The agent installs the key up to and at expireOn.
	if l.Expired(exp) || !l.Expired(exp.Add(time.Nanosecond)) {
		t.Fatal("Expired is wrong at the boundary")
	}
}

func TestJoinLinesKeepsEveryByte(t *testing.T) {
	k := authorizedKey(testkey.Fixed(t, 3))
	for _, v := range []string{
		"", "\n", "a:" + k + "\n\ngarbage  \n", "x:" + k + "\r\ny:" + k, "only junk",
	} {
		if got := JoinLines(ParseLines(v)); got != v {
			t.Errorf("JoinLines(ParseLines(%q)) = %q", v, got)
		}
	}
}

func FuzzParseLines(f *testing.F) {
	k := authorizedKey(testkey.Fixed(f, 4))
	f.Add("alice:" + k + " alice@laptop\nbob:" + k)
	f.Add("nat:" + k + ` google-ssh {"userName":"nat","expireOn":"2026-11-28T12:00:00+0000"}`)
	f.Add("\n\n:x\nroot:ssh-rsa AAAA")
	f.Fuzz(func(t *testing.T, v string) {
		lines := ParseLines(v)
		if got := JoinLines(lines); got != v {
			t.Fatalf("value not kept: %q -> %q", v, got)
		}
		for _, l := range lines {
			if l.Valid() != (l.Key != nil) {
				t.Fatalf("line %q: valid %v but key %v", l.Raw, l.Valid(), l.Key)
			}
			if l.Valid() {
				// A valid line re-rendered must parse to the same key and expiry.
				var again Line
				if l.Expiring() {
					again = ParseLine(FormatExpiringLine(l.User, l.Key, l.ExpireOn))
				} else {
					again = ParseLine(FormatLine(l.User, l.Key, ""))
				}
				if !again.Valid() || !bytes.Equal(again.Key.Marshal(), l.Key.Marshal()) || !again.ExpireOn.Equal(l.ExpireOn) {
					t.Fatalf("re-rendered %q does not round-trip: %+v", l.Raw, again)
				}
			}
		}
	})
}
