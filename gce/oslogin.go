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
}

// PosixAccount is one POSIX account of a login profile.
type PosixAccount struct {
	Primary  bool   `json:"primary"`
	Username string `json:"username"`
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
// for this project), expiring at expire unless it is zero, and returns the
// profile.
func (c *Client) ImportSSHKey(ctx context.Context, account string, key ssh.PublicKey, expire time.Time) (*LoginProfile, error) {
	body := map[string]string{"key": strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))}
	if !expire.IsZero() {
		body["expirationTimeUsec"] = strconv.FormatInt(expire.UnixMicro(), 10)
	}
	var out struct {
		LoginProfile *LoginProfile `json:"loginProfile"`
	}
	u := c.apiRoot("oslogin") + "v1/users/" + url.PathEscape(account) + ":importSshPublicKey"
	if err := c.doAt(ctx, http.MethodPost, u, url.Values{"projectId": {c.ProjectID}}, body, &out); err != nil {
		return nil, explain(err, "import the key into the OS Login profile of "+account, "roles/compute.osLogin")
	}
	if out.LoginProfile == nil || out.LoginProfile.Username() == "" {
		return nil, fmt.Errorf("gce: the OS Login profile of %s has no POSIX account", account)
	}
	return out.LoginProfile, nil
}

// RemoveOSLoginKey deletes key from account's OS Login profile
// (users.getLoginProfile, then users.sshPublicKeys.delete of the entry
// holding it) and reports whether it was there.
func (c *Client) RemoveOSLoginKey(ctx context.Context, account string, key ssh.PublicKey) (bool, error) {
	var prof struct {
		SSHPublicKeys map[string]struct {
			Key  string `json:"key"`
			Name string `json:"name"`
		} `json:"sshPublicKeys"`
	}
	base := c.apiRoot("oslogin") + "v1/users/" + url.PathEscape(account)
	if err := c.doAt(ctx, http.MethodGet, base+"/loginProfile", url.Values{"projectId": {c.ProjectID}}, nil, &prof); err != nil {
		return false, explain(err, "read the OS Login profile of "+account, "roles/compute.osLogin")
	}
	for fp, k := range prof.SSHPublicKeys {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.Key))
		if err != nil || string(pk.Marshal()) != string(key.Marshal()) {
			continue
		}
		if err := c.doAt(ctx, http.MethodDelete, base+"/sshPublicKeys/"+url.PathEscape(fp), nil, nil, &struct{}{}); err != nil {
			return false, explain(err, "delete a key from the OS Login profile of "+account, "roles/compute.osLogin")
		}
		return true, nil
	}
	return false, nil
}
