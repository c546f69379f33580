package keys

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// MetadataKey is the metadata item that holds SSH keys; LegacyMetadataKey is
// the older name the guest agents still read.
const (
	MetadataKey       = "ssh-keys"
	LegacyMetadataKey = "sshKeys"
)

// Scopes: which metadata holds a key.
const (
	ScopeProject  = "project"  // commonInstanceMetadata: every node in the project
	ScopeInstance = "instance" // one instance's metadata
)

// ExpireLayout is the expireOn form every guest agent accepts. The Python
// accounts daemon accepts only this exact form, and Go's RFC 3339 parser
// rejects it, so it is written in UTC with a numeric "+0000" offset.
const ExpireLayout = "2006-01-02T15:04:05-0700"

// expiringTag starts the comment of an expiring key.
const expiringTag = "google-ssh"

// pythonUser is the user name rule of the retired Python accounts daemon
// (compute-image-packages); the Go guest agent accepts more (see
// agentUserErr), but names outside this rule fail on images that still
// run the Python daemon.
var pythonUser = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}$`) })

// PythonAgentSkips reports whether the retired Python accounts daemon
// would skip user.
func PythonAgentSkips(user string) bool { return !pythonUser().MatchString(user) }

// errNoAccount marks a user name the Go guest agent takes but cannot make
// an account for: useradd refuses a leading '-' (an option), a '/', "."
// and "..". The agent logs the failure and tries again at each metadata
// change; the key never reaches the node.
var errNoAccount = errors.New("useradd refuses it")

// agentUserErr says why no key reaches the node for a user name, or
// returns nil: the Go guest agent rejects only empty names and names with
// whitespace (Go regexp's \s); it takes the rest, and useradd then refuses
// the ones errNoAccount names.
func agentUserErr(user string) error {
	switch {
	case user == "":
		return errors.New("empty user name")
	case strings.ContainsAny(user, "\t\n\f\r "):
		return fmt.Errorf("user name %q has whitespace", user)
	case strings.HasPrefix(user, "-"):
		return fmt.Errorf("user name %q starts with '-': %w", user, errNoAccount)
	case strings.Contains(user, "/") || user == "." || user == "..":
		return fmt.Errorf("user name %q is a path: %w", user, errNoAccount)
	}
	return nil
}

// CheckUser returns an error naming the rule when user cannot be the user
// of an ssh-keys line: a ':' would cut the name short, the guest agent
// would skip the line (an empty name, whitespace: Google's guest agent
// checks no more), or it cannot be a Linux account, which the agent then
// fails to create (useradd refuses a leading '-', a '/', "." and "..").
func CheckUser(user string) error {
	if strings.Contains(user, ":") {
		return fmt.Errorf("keys: user name %q has a ':', which ends the user name in ssh-keys", user)
	}
	if user != "" && (strings.HasPrefix(user, "-") || strings.Contains(user, "/") || user == "." || user == "..") {
		return fmt.Errorf("keys: user name %q cannot be a Linux account: useradd refuses a name that starts with '-', holds a '/', or is . or .., so the guest agent would fail to create it", user)
	}
	if err := agentUserErr(user); err != nil {
		return fmt.Errorf("keys: the guest agent would skip the key: %w", err)
	}
	return nil
}

// Line is one line of an ssh-keys metadata value.
type Line struct {
	Raw      string        // the line exactly as it stands in metadata
	User     string        // text before the first ':'
	Key      ssh.PublicKey // nil when Err is set
	Comment  string        // what follows the key, if anything
	ExpireOn time.Time     // zero for a permanent key
	Err      error         // why a guest agent would skip this line
}

// Expiring reports whether the line carries a google-ssh expiry.
func (l Line) Expiring() bool { return !l.ExpireOn.IsZero() }

// Expired reports whether the key has expired at now: the guest agent
// still installs it at the very instant of expireOn.
func (l Line) Expired(now time.Time) bool { return l.Expiring() && l.ExpireOn.Before(now) }

// Valid reports whether a guest agent would install the key.
func (l Line) Valid() bool { return l.Err == nil }

// ParseLines splits an ssh-keys value into lines, keeping every line (blank
// and malformed ones too) so that JoinLines gives back the value byte for byte.
func ParseLines(value string) []Line {
	if value == "" {
		return nil
	}
	raws := strings.Split(value, "\n")
	lines := make([]Line, len(raws))
	for i, raw := range raws {
		lines[i] = ParseLine(raw)
	}
	return lines
}

// JoinLines renders lines back into an ssh-keys value.
func JoinLines(lines []Line) string {
	raws := make([]string, len(lines))
	for i, l := range lines {
		raws[i] = l.Raw
	}
	return strings.Join(raws, "\n")
}

var errBlank = errors.New("blank line")

// ParseLine parses one ssh-keys line the way the Go guest agent does:
// "user:[OPTIONS ]TYPE BASE64 [comment]", where a comment starting with
// "google-ssh" must go on, after a space, with JSON holding an expireOn
// (`google-ssh {"userName":…,"expireOn":…}`), and the key then expires.
func ParseLine(raw string) Line {
	l := Line{Raw: raw}
	s := strings.TrimSpace(raw)
	if s == "" {
		l.Err = errBlank
		return l
	}
	user, rest, ok := strings.Cut(s, ":")
	if !ok {
		l.Err = errors.New("no user: a line must look like USER:TYPE KEY")
		return l
	}
	l.User = user
	if err := agentUserErr(user); err != nil {
		l.Err = err
		return l
	}
	key, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(rest))
	if err != nil {
		l.Err = fmt.Errorf("key for %s: %w", user, err)
		return l
	}
	l.Key, l.Comment = key, comment
	if !strings.HasPrefix(comment, expiringTag) {
		return l
	}
	// The agent cuts the comment at its first space: "google-ssh{…}" has no
	// JSON to read, while "google-sshX {…}" is read like "google-ssh {…}".
	_, js, found := strings.Cut(comment, " ")
	if !found {
		l.Key, l.Err = nil, fmt.Errorf("expiring key for %s: %s with no expiry after a space", user, expiringTag)
		return l
	}
	exp, err := parseExpiry(js)
	if err != nil {
		l.Key, l.Err = nil, fmt.Errorf("expiring key for %s: %w", user, err)
		return l
	}
	l.ExpireOn = exp
	return l
}

type expiry struct {
	UserName string `json:"userName"`
	ExpireOn string `json:"expireOn"`
}

func parseExpiry(js string) (time.Time, error) {
	var e expiry
	if err := json.Unmarshal([]byte(js), &e); err != nil {
		return time.Time{}, fmt.Errorf("google-ssh comment: %w", err)
	}
	if e.ExpireOn == "" {
		return time.Time{}, errors.New("google-ssh comment has no expireOn")
	}
	for _, layout := range []string{time.RFC3339, ExpireLayout} {
		if t, err := time.Parse(layout, e.ExpireOn); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("expireOn %q is not a time like %s", e.ExpireOn, ExpireLayout)
}

// FormatLine renders a permanent key line: "user:TYPE BASE64 comment".
func FormatLine(user string, key ssh.PublicKey, comment string) string {
	s := user + ":" + authorizedKey(key)
	if comment != "" {
		s += " " + comment
	}
	return s
}

// FormatExpiringLine renders a key line that guest agents drop at expireOn,
// in gcloud's form: no spaces in the JSON, userName before expireOn.
func FormatExpiringLine(user string, key ssh.PublicKey, expireOn time.Time) string {
	js, _ := json.Marshal(expiry{UserName: user, ExpireOn: expireOn.UTC().Format(ExpireLayout)})
	return user + ":" + authorizedKey(key) + " " + expiringTag + " " + string(js)
}

// authorizedKey is "TYPE BASE64" without the trailing newline.
func authorizedKey(key ssh.PublicKey) string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(key)), "\n")
}
