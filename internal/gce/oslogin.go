package gce

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// LoginProfile is the part of an OS Login profile gkessh reads.
type LoginProfile struct {
	PosixAccounts []PosixAccount `json:"posixAccounts"`
	// SSHPublicKeys are the profile's keys, by fingerprint.
	SSHPublicKeys map[string]OSLoginKey `json:"sshPublicKeys"`
}

// OSLoginKey is one key of a login profile.
type OSLoginKey struct {
	Key string `json:"key"` // as authorized_keys has it
	// ExpirationTimeUsec is when it expires, in microseconds since the
	// epoch; 0 when it does not.
	ExpirationTimeUsec int64 `json:"expirationTimeUsec,omitempty,string"`
}

// Expire is when k expires; zero when it does not.
func (k OSLoginKey) Expire() time.Time {
	if k.ExpirationTimeUsec == 0 {
		return time.Time{}
	}
	return time.UnixMicro(k.ExpirationTimeUsec)
}

// Find returns the fingerprint (the profile's name for it) and entry of
// key in the profile, and false when it is not there.
func (p *LoginProfile) Find(key ssh.PublicKey) (string, OSLoginKey, bool) {
	for fp, k := range p.SSHPublicKeys {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.Key))
		if err == nil && string(pk.Marshal()) == string(key.Marshal()) {
			return fp, k, true
		}
	}
	return "", OSLoginKey{}, false
}

// PosixAccount is one POSIX account of a login profile.
type PosixAccount struct {
	Primary  bool   `json:"primary"`
	Username string `json:"username"`
}

// UsernameFor is the POSIX user to log in as when requested was asked
// for, as gcloud picks it: requested when the profile has an account of
// that name, else Username.
func (p *LoginProfile) UsernameFor(requested string) string {
	for _, a := range p.PosixAccounts {
		if a.Username == requested && requested != "" {
			return requested
		}
	}
	return p.Username()
}

// Username is the POSIX user to log in as, as gcloud picks it: the
// primary account's, else the first's; "" when there is none.
func (p *LoginProfile) Username() string {
	for _, a := range p.PosixAccounts {
		if a.Primary {
			return a.Username
		}
	}
	if len(p.PosixAccounts) > 0 {
		return p.PosixAccounts[0].Username
	}
	return ""
}

// ImportSSHKey adds key to account's OS Login profile (users.importSshPublicKey
// for this project) with its comment, as gcloud sends the .pub line,
// expiring at expire unless it is zero, and returns the profile. region,
// when set, is sent as gcloud sends the instance's region: the call then
// returns once the key has reached it.
func (c *Client) ImportSSHKey(ctx context.Context, account string, key ssh.PublicKey, comment string, expire time.Time, region string) (*LoginProfile, error) {
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	if comment != "" {
		line += " " + comment
	}
	body := map[string]string{"key": line}
	if !expire.IsZero() {
		body["expirationTimeUsec"] = strconv.FormatInt(expire.UnixMicro(), 10)
	}
	var out struct {
		LoginProfile *LoginProfile `json:"loginProfile"`
	}
	q := url.Values{"projectId": {c.ProjectID}}
	if region != "" {
		q.Set("regions", region)
	}
	u := c.apiRoot("oslogin") + "v1/users/" + url.PathEscape(account) + ":importSshPublicKey"
	if err := c.doAt(ctx, http.MethodPost, u, q, body, &out); err != nil {
		return nil, explain(err, "import the key into the OS Login profile of "+account, "roles/compute.osLogin")
	}
	if out.LoginProfile == nil || out.LoginProfile.Username() == "" {
		return nil, fmt.Errorf("gce: the OS Login profile of %s has no POSIX account", account)
	}
	return out.LoginProfile, nil
}

// SetOSLoginKeyExpiry sets when key, which the profile of account holds
// under fingerprint, expires (users.sshPublicKeys.patch of
// expirationTimeUsec, as gcloud updates a key already imported, sending
// the key as the profile holds it, comment included); a zero expire makes
// it permanent.
func (c *Client) SetOSLoginKeyExpiry(ctx context.Context, account, fingerprint string, key OSLoginKey, expire time.Time) error {
	body := map[string]string{"key": key.Key}
	if !expire.IsZero() {
		body["expirationTimeUsec"] = strconv.FormatInt(expire.UnixMicro(), 10)
	}
	u := c.apiRoot("oslogin") + "v1/users/" + url.PathEscape(account) + "/sshPublicKeys/" + url.PathEscape(fingerprint)
	q := url.Values{"updateMask": {"expirationTimeUsec"}}
	if err := c.doAt(ctx, http.MethodPatch, u, q, body, &struct{}{}); err != nil {
		return explain(err, "update a key in the OS Login profile of "+account, "roles/compute.osLogin")
	}
	return nil
}

// LoginProfile reads account's OS Login profile for this project
// (users.getLoginProfile).
func (c *Client) LoginProfile(ctx context.Context, account string) (*LoginProfile, error) {
	var prof LoginProfile
	u := c.apiRoot("oslogin") + "v1/users/" + url.PathEscape(account) + "/loginProfile"
	if err := c.doAt(ctx, http.MethodGet, u, url.Values{"projectId": {c.ProjectID}}, nil, &prof); err != nil {
		return nil, explain(err, "read the OS Login profile of "+account, "roles/compute.osLogin")
	}
	return &prof, nil
}

// DeleteOSLoginKey deletes the key account's OS Login profile holds under
// fingerprint (users.sshPublicKeys.delete).
func (c *Client) DeleteOSLoginKey(ctx context.Context, account, fingerprint string) error {
	u := c.apiRoot("oslogin") + "v1/users/" + url.PathEscape(account) + "/sshPublicKeys/" + url.PathEscape(fingerprint)
	if err := c.doAt(ctx, http.MethodDelete, u, nil, nil, &struct{}{}); err != nil {
		return explain(err, "delete a key from the OS Login profile of "+account, "roles/compute.osLogin")
	}
	return nil
}
