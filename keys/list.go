package keys

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Entry is one non-blank ssh-keys line and where it sits.
type Entry struct {
	Scope    string   // ScopeProject or ScopeInstance
	Instance string   // the instance, for ScopeInstance
	Item     string   // the metadata item: ssh-keys or sshKeys
	LineNo   int      // 1-based line number within the item
	Line     Line     // the parsed line
	Problems []string // filled by Audit
}

// Audit fills each entry's Problems: lines the Go guest agent skips or
// whose user it cannot create (and user names only the retired Python
// daemon skips), pasted
// private keys, keys that never expire, expired keys still present, keys
// that appear more than once, and project-wide keys, whose users get root
// (sudo through google-sudoers) on every node that does not block them.
func Audit(entries []Entry, now time.Time) {
	seen := map[string][]int{} // key blob → entry indexes
	for i := range entries {
		e := &entries[i]
		l := e.Line
		if strings.Contains(l.Raw, "PRIVATE KEY") {
			e.Problems = append(e.Problems, "contains what looks like a private key: remove it and replace that key")
		}
		switch {
		case errors.Is(l.Err, errNoAccount):
			e.Problems = append(e.Problems, fmt.Sprintf("the guest agent cannot create its user: %v", l.Err))
			continue
		case !l.Valid():
			e.Problems = append(e.Problems, fmt.Sprintf("the guest agent skips this line: %v", l.Err))
			continue
		}
		if PythonAgentSkips(l.User) {
			e.Problems = append(e.Problems, fmt.Sprintf("the Go guest agent installs it, but images still on the Python accounts daemon skip user %q", l.User))
		}
		switch {
		case !l.Expiring():
			e.Problems = append(e.Problems, "never expires")
		case l.Expired(now):
			e.Problems = append(e.Problems, fmt.Sprintf("expired %s but still present", l.ExpireOn.UTC().Format(time.RFC3339)))
		}
		if e.Scope == ScopeProject && !l.Expired(now) {
			e.Problems = append(e.Problems, "project-wide: "+l.User+" gets sudo on every node that does not set block-project-ssh-keys")
		}
		blob := string(l.Key.Marshal())
		seen[blob] = append(seen[blob], i)
	}
	for i := range entries {
		l := entries[i].Line
		if !l.Valid() {
			continue
		}
		for _, j := range seen[string(l.Key.Marshal())] {
			if j == i {
				continue
			}
			o := entries[j]
			what := "duplicate"
			if o.Line.User != l.User {
				what = "same key also grants user " + o.Line.User
			}
			entries[i].Problems = append(entries[i].Problems, fmt.Sprintf("%s: %s %s line %d", what, o.Scope, o.Item, o.LineNo))
		}
	}
}
