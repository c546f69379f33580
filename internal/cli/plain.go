package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/sshclient"
)

// plainFlag is gcloud compute ssh's --plain: the user takes care of
// authentication, so gkessh manages no key.
func plainFlag() ucli.Flag {
	return &ucli.BoolFlag{Name: "plain", Usage: "gcloud's: manage no key (none created, written to metadata, imported into OS Login or waited for); log in with the key file, if there is one, and your ssh-agent's keys"}
}

// plainRefuses are the flags that say how gkessh manages the key, which
// --plain turns off: given with it, they would be dropped.
var plainRefuses = []string{"scope", "key-expire-after", "ssh-key-expiration", "force-key-file-overwrite", "propagation-timeout"}

// checkPlain refuses, with --plain, the flags it would drop.
func checkPlain(c *ucli.Context) error {
	for _, name := range plainRefuses {
		if c.IsSet(name) {
			return usagef("--plain manages no key, so --%s would do nothing: drop one of them", name)
		}
	}
	return nil
}

// plainRefusedError is a node refusing the user's own keys under --plain.
type plainRefusedError struct{ err error }

func (e *plainRefusedError) Error() string { return e.err.Error() }
func (e *plainRefusedError) Unwrap() error { return e.err }

// plain is gkessh NODE --plain, as gcloud's --plain: no key pair is
// created, no line written, no OS Login profile read or changed, no wait
// for a key; the user is the one asked for (or gcloud's default) and the
// keys are the user's own: the key file when it exists, then ssh-agent's.
// Host keys are still checked, as for every login.
func (o login) plain(ctx context.Context, stdio Stdio, a *access.Access, start time.Time) error {
	logf := o.d.logger(o.Verbose)
	user, err := userOf(o.d, o.keyOptions)
	if err != nil {
		return err
	}
	n, inst, err := a.Instance(ctx, o.Node)
	if err != nil {
		return asNearCommand(o.Node, err)
	}
	if inst.Status != "RUNNING" {
		return notRunning(n, inst.Status)
	}
	o.inContainer(inst, stdio.In)
	p := &access.Plan{Node: n, Inst: inst, User: user}
	keyPath, err := keyFileOf(o.d, o.keyOptions)
	if err != nil {
		return err
	}
	signers, from, closeKeys, err := plainSigners(ctx, keyPath, o.KeyFile != "")
	if err != nil {
		return err
	}
	defer closeKeys()
	if o.DryRun {
		fmt.Fprintf(stdio.Out, "--plain: would write no key, and log in as %s with %s\n", printable(user), strings.Join(from, " and "))
		if len(o.Command) > 0 {
			fmt.Fprintf(stdio.Out, "and run %q\n", sshclient.CommandLine(o.Command))
		}
		return nil
	}
	logf("--plain: logging in as %s with %s", user, strings.Join(from, " and "))
	fwds, err := listenLocal(ctx, o.LocalForwards)
	if err != nil {
		return err
	}
	defer closeAll(fwds)
	dial, err := o.dialer(ctx, p)
	if err != nil {
		return err
	}
	client, err := a.LoginWith(ctx, p, dial, signers)
	var refused *sshclient.KeyRefusedError
	if errors.As(err, &refused) {
		return &plainRefusedError{err}
	}
	if err != nil {
		return err
	}
	defer client.Close()
	logf("logged in as %s after %v", user, time.Since(start).Round(time.Millisecond))
	if fwds, err = listenRemote(client, o.RemoteForwards, fwds, n.Name); err != nil {
		return err
	}
	stopForwards := serveForwards(ctx, stdio, client, fwds, n.Name)
	defer stopForwards()
	if o.NoCommand {
		return waitForwards(ctx, client, stopForwards, n.Name)
	}
	return o.session(ctx, stdio, client)
}

// plainSigners are the keys a --plain login offers: the key file's, when
// it exists (given with --key-file, it must), then ssh-agent's others.
// from names where they came from; done closes the agent connection.
func plainSigners(ctx context.Context, keyPath string, typed bool) (signers []ssh.Signer, from []string, done func(), err error) {
	done = func() {}
	kp, err := keys.Load(keyPath)
	switch {
	case err == nil:
		signers, from = append(signers, kp.Signer), append(from, "the key "+keyPath)
		done = func() { kp.Close() }
	case typed || !errors.Is(err, fs.ErrNotExist):
		return nil, nil, done, badInput(err)
	}
	more, conn, aerr := keys.AgentKeys(ctx)
	if aerr == nil {
		for _, s := range more {
			if !slices.ContainsFunc(signers, func(k ssh.Signer) bool { return keys.SameKey(k.PublicKey(), s.PublicKey()) }) {
				signers = append(signers, s)
			}
		}
		if len(more) > 0 {
			from = append(from, fmt.Sprintf("ssh-agent's %d keys", len(more)))
		}
		prev := done
		done = func() { prev(); conn.Close() }
	}
	if len(signers) == 0 {
		done()
		why := "no key file " + keyPath
		if aerr != nil {
			why += " and " + aerr.Error()
		} else {
			why += " and ssh-agent holds none"
		}
		return nil, nil, func() {}, badInput(fmt.Errorf("--plain: no key to log in with: %s", why))
	}
	return signers, from, done, nil
}
