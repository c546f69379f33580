package access

import (
	"context"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/gce"
)

// OS Login, as gcloud does it: the key goes into the OS Login profile of
// the account (gcloud's auth/impersonate_service_account, else its
// core/account) with an expiry, instead of metadata, and ssh logs in as the
// profile's POSIX user.

// profile is the account's OS Login profile, as read once per Access.
type profile struct {
	account string
	*gce.LoginProfile
}

// loginProfile reads the OS Login profile of Config.Account, once.
func (a *Access) loginProfile(ctx context.Context) (*profile, error) {
	return a.profile.get(func() (*profile, error) {
		account, err := a.cfg.Account()
		if err != nil {
			return nil, err
		}
		c, err := a.Compute(ctx)
		if err != nil {
			return nil, err
		}
		prof, err := c.LoginProfile(ctx, account)
		if err != nil {
			return nil, err
		}
		return &profile{account: account, LoginProfile: prof}, nil
	})
}

// Revoke takes key out of the OS Login profile of Config.Account and says
// whose profile that is and whether it held the key. Under DryRun it only
// reads the profile: removed then says the key would go.
func (a *Access) Revoke(ctx context.Context, key ssh.PublicKey) (account string, removed bool, err error) {
	prof, err := a.loginProfile(ctx)
	if err != nil {
		return "", false, err
	}
	fp, _, ok := prof.Find(key)
	if !ok || a.cfg.DryRun {
		return prof.account, ok, nil
	}
	c, err := a.Compute(ctx)
	if err != nil {
		return prof.account, false, err
	}
	return prof.account, true, c.DeleteOSLoginKey(ctx, prof.account, fp)
}
