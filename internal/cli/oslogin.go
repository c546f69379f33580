package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/gce"
)

// OS Login, as gcloud does it: the key goes into the gcloud account's OS
// Login profile, with an expiry, instead of metadata, and ssh logs in as the
// profile's POSIX user. The login, the proxy, config-ssh, inventory and run
// all come here.

// osLoginAccount is the gcloud account whose OS Login profile holds the key.
func (d *deps) osLoginAccount() (string, error) {
	account, err := d.gcloudAccount()
	if err != nil {
		return "", err
	}
	if account == "" {
		return "", errors.New("OS Login is on for this instance, and its login profile is your Google account's: set it with 'gcloud config set account EMAIL' (or CLOUDSDK_CORE_ACCOUNT)")
	}
	return account, nil
}

// osLoginUser is the POSIX user of the gcloud account's OS Login profile:
// the user ssh must log in as.
func (d *deps) osLoginUser(ctx context.Context, c *gce.Client) (string, error) {
	account, err := d.osLoginAccount()
	if err != nil {
		return "", err
	}
	prof, err := c.LoginProfile(ctx, account)
	if err != nil {
		return "", err
	}
	if prof.Username() == "" {
		return "", fmt.Errorf("the OS Login profile of %s has no POSIX account", account)
	}
	return prof.Username(), nil
}

// importOSLoginKey puts pub into the OS Login profile of the gcloud
// account, expiring after expireAfter (0: never), tells say, and returns the
// profile's POSIX user.
func (d *deps) importOSLoginKey(ctx context.Context, c *gce.Client, pub ssh.PublicKey, expireAfter time.Duration, say func(format string, args ...any)) (string, error) {
	account, err := d.osLoginAccount()
	if err != nil {
		return "", err
	}
	var expire time.Time
	if expireAfter > 0 {
		expire = d.now().Add(expireAfter)
	}
	prof, err := c.ImportSSHKey(ctx, account, pub, expire)
	if err != nil {
		return "", err
	}
	when := "never expiring"
	if !expire.IsZero() {
		when = "expiring " + expire.UTC().Format(time.RFC3339)
	}
	say("Imported your key into the OS Login profile of %s (user %s), %s.", account, prof.Username(), when)
	return prof.Username(), nil
}

// osLoginUserError is a proxy asked to log in to an OS Login node as a user
// other than the profile's POSIX user: the node would refuse the key only
// after the whole propagation wait.
type osLoginUserError struct{ Node, User, Posix string }

func (e *osLoginUserError) Error() string {
	return fmt.Sprintf("%s is under OS Login, which logs you in as %s, your profile's POSIX user, not as %s", e.Node, e.Posix, e.User)
}

// importOSLoginKeyFor imports the key and returns the profile's POSIX
// user, refusing first, with nothing imported, a user asked for (the
// proxy's --user, ssh's %r) that is not it; "" asks for none.
func (d *deps) importOSLoginKeyFor(ctx context.Context, c *gce.Client, node, asked string, pub ssh.PublicKey, expireAfter time.Duration, say func(format string, args ...any)) (string, error) {
	posix, err := d.osLoginUser(ctx, c)
	if err != nil {
		return "", err
	}
	if asked != "" && asked != posix {
		return "", &osLoginUserError{Node: node, User: asked, Posix: posix}
	}
	return d.importOSLoginKey(ctx, c, pub, expireAfter, say)
}

// sayTo prints one line per call on w.
func sayTo(w io.Writer) func(format string, args ...any) {
	return func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
}
