package cli

import (
	"errors"
	"fmt"
	"io"
	"time"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/keys"
)

// keyOptions are the flags of every command that puts the user's key into
// metadata: gkessh NODE, proxy and keys.
type keyOptions struct {
	User        string
	KeyFile     string
	Scope       string
	ExpireAfter time.Duration
	// ExpireAt is --ssh-key-expiration's time, which the line gets
	// however long the run takes before writing it (ExpireAfter is the
	// lifetime it left at parsing).
	ExpireAt time.Time
	// ExpirySet: the lifetime was given (--key-expire-after or
	// --ssh-key-expiration), so a key line far from it is renewed with it.
	ExpirySet bool
	// ForceOverwrite: a broken key pair is replaced with a new one
	// (--force-key-file-overwrite).
	ForceOverwrite bool
}

// defaultPropagationTimeout is how long a login waits, by default, for a
// new key to reach the node.
const defaultPropagationTimeout = 2 * time.Minute

// propagationFlag bounds the wait for a new key to reach the node.
func propagationFlag() ucli.Flag {
	return &ucli.DurationFlag{Name: "propagation-timeout", Value: defaultPropagationTimeout, Usage: "how long to wait for a new key to reach the node"}
}

// keyFlagValues reads and checks the key flags (globals: whichever the
// command honours; the others keep their defaults).
func keyFlagValues(c *ucli.Context) (keyOptions, error) {
	k := keyOptions{User: c.String("user"), KeyFile: c.String("key-file"), Scope: c.String("scope"), ForceOverwrite: c.Bool("force-key-file-overwrite")}
	if err := checkScope(k.Scope); err != nil {
		return k, err
	}
	if c.IsSet("user") {
		if err := checkUser("--user", k.User); err != nil {
			return k, err
		}
	}
	if s := c.String("ssh-key-expiration"); s != "" {
		if c.IsSet("key-expire-after") {
			return k, usagef("--ssh-key-expiration and --key-expire-after: give one")
		}
		now := time.Now()
		at, err := keys.ParseExpiration(s, now)
		if err != nil {
			return k, usagef("--ssh-key-expiration %v", err)
		}
		k.ExpireAt, k.ExpireAfter, k.ExpirySet = at, at.Sub(now), true
	} else if s := c.String("key-expire-after"); s != "" {
		d, err := keys.ParseLifetime(s)
		if err != nil {
			return k, usagef("--key-expire-after %v", err)
		}
		k.ExpireAfter, k.ExpirySet = d, c.IsSet("key-expire-after")
	}
	return k, nil
}

// checkUser refuses a user given on the command line that cannot work, by
// the one rule for user names (access.CheckUser): one the guest agent would
// skip (whitespace, a leading '-', '/'), a ':' that would end it early in
// ssh-keys, control characters, or shell metacharacters. Anything else
// gcloud takes is taken.
func checkUser(flag, u string) error {
	if err := access.CheckUser(u); err != nil {
		if u == "" {
			return usagef("%s: %v", flag, err)
		}
		return usagef("%s %q: %v", flag, u, err)
	}
	return nil
}

// userOf is --user, else the user gcloud would pick (ssh.py
// GetDefaultSshUsername): the local login name when ASCII without spaces,
// else one made from the gcloud account, which is then said on stderr
// once, as gcloud warns. A local name that cannot be a user name (shell
// or control characters, which would reach ~/.ssh/config's User and %r) is
// refused, asking for --user, as --user itself would be.
func userOf(d *deps, k keyOptions) (string, error) {
	if k.User != "" {
		return k.User, nil
	}
	local, _ := d.localUser() // none: the gcloud account names the user
	u, err := keys.RemoteUser(local, func() (string, error) { return gcloudAccount(d) })
	if err != nil {
		return "", badInput(err)
	}
	if err := access.CheckUser(u); err != nil {
		return "", badInput(fmt.Errorf("the local user name %q cannot be the remote user: %v: pass --user", u, err))
	}
	if u != local {
		d.userSaid.Do(func() {
			fmt.Fprintf(d.log, "gkessh: the local user name %q is not ASCII without spaces: using %q, made from the gcloud account, as gcloud does (--user to choose)\n", local, u)
		})
	}
	return u, nil
}

// keyFileOf is --key-file, else ~/.ssh/google_compute_engine.
func keyFileOf(d *deps, k keyOptions) (string, error) {
	if k.KeyFile != "" {
		return k.KeyFile, nil
	}
	p, err := d.keyPath()
	if err != nil {
		return "", badInput(err)
	}
	return p, nil
}

// badInput marks a local mistake (a key file, a user name) for exit status
// 2, like a usage error, but without pointing at --help.
func badInput(err error) error { return exitError{code: exitUsage, err: err} }

// loadKey loads the key pair at path, creating it when missing, or with
// force replacing a broken one, and says so on w.
func loadKey(path string, w io.Writer, force bool) (*keys.KeyPair, error) {
	kp, err := keys.LoadOrCreate(path)
	var kfe *keys.KeyFileError
	if force && errors.As(err, &kfe) && kfe.Broken {
		fmt.Fprintf(w, "Replacing the key pair %s with a new one (--force-key-file-overwrite): %v\n", path, err)
		kp, err = keys.Replace(path)
	}
	if err != nil {
		return nil, badInput(err)
	}
	if kp.Created {
		fmt.Fprintf(w, "Generated SSH key %s (%s %s).\n", kp.Path, kp.Public.Type(), ssh.FingerprintSHA256(kp.Public))
	}
	return kp, nil
}

// acceptChangedFlag lets the keys a guest publishes replace changed
// recorded ones (knownhosts.Pin), in logins, config-ssh and inventory.
func acceptChangedFlag() ucli.Flag {
	return &ucli.BoolFlag{Name: "accept-changed-host-keys", Usage: "when a node's guest publishes host keys other than the recorded ones (rebuilt node, regenerated keys), record them in place of the old ones instead of refusing"}
}
