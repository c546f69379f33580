package access

import (
	"context"

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
