//go:build unix

package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	compute "google.golang.org/api/compute/v1"
)

// This file is the emulator's own reading of metadata as Google's Go guest
// agent (GoogleCloudPlatform/guest-agent, utils/ssh.go and metadata.go)
// reads it. It deliberately shares no code with gkessh's keys package: the
// emulator judges gkessh, so a misreading shared by both must fail a test
// (testdata/guest-agent-ssh-keys.txt holds the lines both suites check).

// agentBool reads a boolean attribute as the agent does: the value as
// stored through strconv.ParseBool; ok is false when the key is missing or
// the value does not parse, and the agent then acts as if it were missing.
func agentBool(md *compute.Metadata, key string) (value, ok bool) {
	v, found := metadataValue(md, key)
	if !found {
		return false, false
	}
	b, err := strconv.ParseBool(v)
	return b, err == nil
}

// agentOSLogin reports whether the agent turns OS Login on: the project's
// value that parses, overridden by the instance's value that parses.
func agentOSLogin(inst, proj *compute.Metadata) bool {
	on, _ := agentBool(proj, "enable-oslogin")
	if b, ok := agentBool(inst, "enable-oslogin"); ok {
		on = b
	}
	return on
}

// agentKey is a key the agent installs.
type agentKey struct {
	user     string
	key      ssh.PublicKey
	expireOn time.Time // zero: the key never expires
}

// errAgentExpired marks a key the agent drops because its time has passed.
var errAgentExpired = errors.New("expired key")

// errUseraddRefuses marks a user name the agent accepts but useradd
// refuses, so the account (and its keys) never comes to be.
var errUseraddRefuses = errors.New("useradd refuses the user name")

// whitespace is the agent's user name test: Go's \s.
var whitespace = regexp.MustCompile(`\s`)

// agentLines splits an ssh-keys value the way the agent's metadata reader
// does: on newlines, each line trimmed, empty lines gone.
func agentLines(value string) []string {
	var out []string
	for _, l := range strings.Split(value, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// agentParse is what the agent makes of one ssh-keys line at now: the key it
// installs, or why it skips the line (errAgentExpired for an expired key).
func agentParse(line string, now time.Time) (agentKey, error) {
	s := strings.Trim(line, " ")
	if s == "" {
		return agentKey{}, errors.New("empty key")
	}
	i := strings.Index(s, ":")
	if i < 0 {
		return agentKey{}, errors.New("unrecognized format, expecting user:ssh-key")
	}
	user, rest := s[:i], s[i+1:]
	switch {
	case user == "":
		return agentKey{}, errors.New("user missing")
	case rest == "":
		return agentKey{}, errors.New("key missing")
	case whitespace.MatchString(user):
		return agentKey{}, errors.New("invalid username: whitespace")
	}
	key, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.Trim(rest, " ")))
	if err != nil {
		return agentKey{}, err
	}
	k := agentKey{user: user, key: key}
	if !strings.HasPrefix(comment, "google-ssh") {
		return k, useraddRefuses(user)
	}
	// Whatever follows the first space must be JSON with an expireOn.
	_, js, found := strings.Cut(comment, " ")
	if !found {
		return agentKey{}, errors.New("expiring key without expiration")
	}
	var exp struct{ ExpireOn, UserName string }
	if err := json.Unmarshal([]byte(js), &exp); err != nil {
		return agentKey{}, fmt.Errorf("expiration: %w", err)
	}
	t, err := time.Parse(time.RFC3339, exp.ExpireOn)
	if err != nil {
		var err2 error
		if t, err2 = time.Parse("2006-01-02T15:04:05-0700", exp.ExpireOn); err2 != nil {
			return agentKey{}, fmt.Errorf("expireOn: %w", err)
		}
	}
	if t.Before(now) {
		return agentKey{}, errAgentExpired
	}
	k.expireOn = t
	return k, useraddRefuses(user)
}

// useradd refuses names the agent takes: it then cannot make the account,
// and tries again at each metadata change.
func useraddRefuses(user string) error {
	switch {
	case strings.HasPrefix(user, "-"):
		return fmt.Errorf("%w: leading hyphen", errUseraddRefuses)
	case strings.Contains(user, "/") || user == "." || user == "..":
		return fmt.Errorf("%w: path separator or traversal", errUseraddRefuses)
	}
	return nil
}
