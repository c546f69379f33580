package keys

import (
	"bytes"
	"time"

	"golang.org/x/crypto/ssh"
)

// MaxValueBytes is GCE's limit on one metadata value.
const MaxValueBytes = 262144

// SameKey reports whether a and b are the same public key.
func SameKey(a, b ssh.PublicKey) bool {
	return a != nil && b != nil && bytes.Equal(a.Marshal(), b.Marshal())
}

// RefreshMargin is how close to its expiry a present key gets replaced: a
// tenth of its lifetime, at most an hour, so a session started now does not
// lose its key halfway. After metakeys.Ensure, the key is good for at least
// this long.
func RefreshMargin(expireAfter time.Duration) time.Duration {
	return min(expireAfter/10, time.Hour)
}

// covers reports whether l already grants user the key pub well enough that
// nothing needs writing (Lasts).
func covers(l Line, user string, pub ssh.PublicKey, now time.Time, expireAfter time.Duration, exact bool) bool {
	if !l.Valid() || l.User != user || !SameKey(l.Key, pub) {
		return false
	}
	var expireOn time.Time
	if l.Expiring() {
		expireOn = l.ExpireOn
	}
	return Lasts(expireOn, now, expireAfter, exact)
}

// Lasts reports whether a grant expiring at expireOn (zero: never) will do
// for a requested lifetime of expireAfter (0: never), so that nothing needs
// writing: a permanent grant always does; an expiring one does when
// expiring ones are wanted and it outlives the refresh margin. With exact
// (the user asked for this lifetime) it must also expire within the refresh
// margin of now+expireAfter: a longer one is replaced by the shorter one
// asked for, a shorter one extended. Metadata lines and OS Login keys
// follow this one rule.
func Lasts(expireOn, now time.Time, expireAfter time.Duration, exact bool) bool {
	if expireOn.IsZero() {
		return true
	}
	margin := RefreshMargin(expireAfter)
	if expireAfter == 0 || !expireOn.After(now.Add(margin)) {
		return false
	}
	want := now.Add(expireAfter)
	return !exact || (expireOn.Before(want.Add(margin)) && expireOn.After(want.Add(-margin)))
}

// Upsert adds user's key pub to lines unless a line already covers it
// (exact: see Lasts); a permanent line keeps the key's comment, as
// gcloud's do. The new line replaces user's other lines for the same
// key, expired or not, so repeated runs do not pile up lines. Lines under
// user's name for other keys stay, expired ones too: a shared name (root,
// a team account) holds other people's keys, which are theirs to remove.
// Every other line is kept byte for byte and in order. It returns the new lines and the line
// added, "" when nothing changes.
func Upsert(lines []Line, user string, pub ssh.PublicKey, comment string, now time.Time, expireAfter time.Duration, exact bool) ([]Line, string) {
	for _, l := range lines {
		if covers(l, user, pub, now, expireAfter, exact) {
			return lines, ""
		}
	}
	var raw string
	if expireAfter == 0 {
		raw = FormatLine(user, pub, comment)
	} else {
		raw = FormatExpiringLine(user, pub, now.Add(expireAfter))
	}
	out := make([]Line, 0, len(lines)+1)
	for _, l := range lines {
		if l.Valid() && l.User == user && SameKey(l.Key, pub) {
			continue
		}
		out = append(out, l)
	}
	// Go in before trailing empty lines, so a value that ended with a
	// newline still does.
	at := len(out)
	for at > 0 && out[at-1].Raw == "" {
		at--
	}
	out = append(out[:at], append([]Line{ParseLine(raw)}, out[at:]...)...)
	return out, raw
}

// Selector picks lines to remove; it sees every line of the value, so it can
// judge duplicates.
type Selector func(i int, lines []Line) bool

// UserLines selects user's lines; with pub, only those for that key.
func UserLines(user string, pub ssh.PublicKey) Selector {
	return func(i int, lines []Line) bool {
		l := lines[i]
		return l.User == user && (pub == nil || SameKey(l.Key, pub))
	}
}

// ExpiredLines selects lines that expired by now: everyone's when user is
// "", else user's, and with pub only those for pub: under a shared name
// (root, a team account) an expired line of another key is someone else's.
// For user it also selects stale lines: an expiring line for a key that
// another of user's lines keeps longer (or forever), which is what earlier
// runs of gcloud leave behind.
func ExpiredLines(user string, pub ssh.PublicKey, now time.Time) Selector {
	return func(i int, lines []Line) bool {
		l := lines[i]
		if user != "" && l.User != user {
			return false
		}
		if pub != nil && (!l.Valid() || !SameKey(l.Key, pub)) {
			return false
		}
		if l.Expired(now) {
			return true
		}
		if user == "" || !l.Valid() || !l.Expiring() {
			return false
		}
		for j, o := range lines {
			if j != i && o.Valid() && o.User == user && SameKey(o.Key, l.Key) &&
				(!o.Expiring() || o.ExpireOn.After(l.ExpireOn) || o.ExpireOn.Equal(l.ExpireOn) && j > i) {
				return true
			}
		}
		return false
	}
}

// RemoveLines drops the lines sel picks and returns what is left and what went.
func RemoveLines(lines []Line, sel Selector) (kept, gone []Line) {
	for i, l := range lines {
		if sel(i, lines) {
			gone = append(gone, l)
		} else {
			kept = append(kept, l)
		}
	}
	return kept, gone
}
