package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/knownhosts"
	"github.com/gkessh/gkessh/sshclient"
	"github.com/gkessh/gkessh/tunnel"
)

// proxyOptions are the flags and arguments of `gkessh proxy NODE [PORT]`.
type proxyOptions struct {
	globalOptions
	keyOptions
	Node               string
	Port               int
	NoEnsureKey        bool
	PropagationTimeout time.Duration
	// InstanceID is the id the ssh config's HostKeyAlias pins (config-ssh
	// passes it); 0 when unknown.
	InstanceID uint64
}

func proxyCommand(d *deps, stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:  "proxy",
		Usage: "connect stdin and stdout to a node's port through IAP, for ssh's ProxyCommand",
		UsageText: "gkessh proxy [flags] NODE [PORT]\n\n" +
			"   PORT defaults to 22. In ~/.ssh/config:\n" +
			"     Host gke-*\n" +
			"       ProxyCommand gkessh proxy --user %r %h %p\n\n" +
			"   For port 22 the proxy first makes sure your key is in metadata and installed on the\n" +
			"   node (as gkessh NODE does), so ssh's one try with it succeeds. On an OS Login VM the\n" +
			"   key goes into your OS Login profile instead, and ssh must log in as its POSIX user\n" +
			"   (config-ssh writes that User). Once the node has\n" +
			"   taken the key, later connections skip this with no API call until the key nears\n" +
			"   expiry. --no-ensure-key leaves keys alone.",
		Flags: []ucli.Flag{propagationFlag(),
			&ucli.BoolFlag{Name: "no-ensure-key", Usage: "do not put the key into metadata or wait for it; just carry the bytes"},
			&ucli.Uint64Flag{Name: "instance-id", Usage: "the instance id the ssh config pins host keys under (config-ssh writes it); another id means the node was recreated"},
			// So that `gcloud compute start-iap-tunnel %h %p --listen-on-stdin`
			// in an ssh config becomes gkessh by changing the command alone.
			&ucli.BoolFlag{Name: "listen-on-stdin", Usage: "the only way proxy works; accepted for gcloud start-iap-tunnel command lines"}},
		Action: func(c *ucli.Context) error {
			k, err := keyFlagValues(c)
			if err != nil {
				return err
			}
			o := proxyOptions{globalOptions: globals(c), keyOptions: k, NoEnsureKey: c.Bool("no-ensure-key"), PropagationTimeout: c.Duration("propagation-timeout"), InstanceID: c.Uint64("instance-id")}
			if o.Node, o.Port, err = nodePort(c.Args().Slice(), 22, "gkessh proxy NODE [PORT]"); err != nil {
				return err
			}
			return runProxy(c.Context, o, d, stdio)
		},
	}
}

// checkRecreated compares the node's current id with the one the ssh config
// pins. A node recreated under the same name (a managed instance group's
// auto-repair) has new host keys under a new id: ssh would refuse it with a
// changed-host-key warning whose advice (ssh-keygen -R) does not help.
func (o proxyOptions) checkRecreated(id uint64) error {
	return recreated(o.InstanceID, id)
}

func recreated(pinned, id uint64) error {
	if pinned == 0 || id == 0 || id == pinned {
		return nil
	}
	return fmt.Errorf("the node was recreated (instance id %d → %d): run `gkessh config-ssh`", pinned, id)
}

// recheckTimeout bounds the lookup after ssh gave up during key exchange;
// ssh has exited by then, so nobody waits on it but the message.
const recheckTimeout = 5 * time.Second

// recheck runs when ssh left during key exchange, as it does when it
// refuses the host key. The warm path dials on the zone cache's word,
// with no API call, so only now can the proxy learn that the node was
// recreated: it fetches the instance (also after ssh's SIGHUP cancelled
// ctx), which refreshes the cache, and compares its id with the pinned
// one, else with the one it dialled on. A failed lookup says nothing.
func recheck(ctx context.Context, o proxyOptions, a *access.Access, n access.Node) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recheckTimeout)
	defer cancel()
	now, _, err := a.Instance(ctx, n.Name)
	if err != nil {
		return nil
	}
	return recreated(cmp.Or(o.InstanceID, n.ID), now.ID)
}

// whyUnreached is err, or, when IAP could not reach the node (4003) because
// it is not RUNNING, the login's message saying so: the warm path dials
// before any lookup, so only now is the node's status worth a call.
func whyUnreached(ctx context.Context, a *access.Access, n access.Node, err error) error {
	var ce *tunnel.CloseError
	if !errors.As(err, &ce) || ce.Code != tunnel.CodeFailedToConnectToBackend {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recheckTimeout)
	defer cancel()
	now, inst, ierr := a.Instance(ctx, n.Name)
	if ierr != nil || inst.Status == "RUNNING" {
		return err
	}
	return notRunning(now, inst.Status)
}

// runProxy carries stdin and stdout through a tunnel until both ends are
// done. Stdout gets nothing but the node's bytes. A tunnel that cannot be
// opened or breaks exits 255 with one line on stderr, as ssh does.
func runProxy(ctx context.Context, o proxyOptions, d *deps, stdio Stdio) error {
	a, n, dial, err := nodeDialer(ctx, o, d)
	if err == nil {
		err = o.checkRecreated(n.ID)
	}
	if err != nil {
		return exitError{code: exitFailure, err: err}
	}
	next, release, err := sshclient.OpenFirst(ctx, dial)
	if err != nil {
		return exitError{code: exitFailure, err: whyUnreached(ctx, a, n, err)}
	}
	defer release()
	var (
		grant  *access.Access // the key's way in, when the proxy stages it
		warmOn *stamp         // the stamp the warm path trusted
	)
	if o.Port == 22 && !o.NoEnsureKey {
		grant, err = newAccess(ctx, o.globalOptions, o.keyOptions, d, stdio, accessOptions{Strict: knownhosts.StrictAcceptNew})
		if err != nil {
			return exitError{code: exitFailure, err: err}
		}
		defer grant.Close()
		if warmOn, err = stageKey(ctx, o, d, grant, n, dial, stdio); err != nil {
			return exitError{code: exitFailure, err: err}
		}
	}
	conn, err := next(ctx)
	if err != nil {
		return exitError{code: exitFailure, err: err}
	}
	defer conn.Close()
	defer oneProc(d.env)()
	in, inOK := stdio.In.(*os.File)
	out, outOK := stdio.Out.(*os.File)
	if !inOK || !outOK {
		return exitError{code: exitFailure, err: errors.New("proxy: stdin and stdout must be files, pipes or sockets")}
	}
	var sess tunnel.SSHSession
	if o.Port == 22 {
		sess, err = tunnel.PipeSSH(ctx, conn, in, out)
	} else {
		err = tunnel.Pipe(ctx, conn, in, out)
	}
	var rerr error
	switch {
	case sess.KexIncomplete:
		rerr = recheck(ctx, o, a, n)
	case warmOn != nil && sess.Received < refusedBytes:
		// Logged in on the stamp's word, or refused? A refused session
		// is this short; a login is longer.
		rerr = recheckKey(ctx, o, d, grant, n, dial, warmOn, stdio)
	}
	if rerr != nil {
		return exitError{code: exitFailure, err: rerr}
	}
	if err != nil && ctx.Err() == nil {
		return exitError{code: exitFailure, err: err}
	}
	return nil
}

// nodeDialer resolves the node (from the zone cache when warm: no API
// call) and returns a function that opens tunnels to its port, which drops
// the cached zone when IAP finds no such instance there.
func nodeDialer(ctx context.Context, o proxyOptions, d *deps) (*access.Access, access.Node, sshclient.DialFunc, error) {
	if err := checkNode(o.Node, o.Zone); err != nil {
		return nil, access.Node{}, nil, err
	}
	cfg, err := nodeConfig(o.globalOptions, d)
	if err != nil {
		return nil, access.Node{}, nil, err
	}
	// A stale inventory or ssh config runs the proxy once per deleted
	// node: a miss costs no list of the project for a suggestion.
	cfg.Suggest = false
	a := access.New(cfg)
	n, err := a.Resolve(ctx, o.Node)
	if err != nil {
		return nil, n, nil, err
	}
	dl, err := d.iapDialer(ctx, o.globalOptions)
	if err != nil {
		return nil, n, nil, err
	}
	target := tunnel.Target{Project: n.Project, Zone: n.Zone, Instance: n.Name, Port: o.Port}
	return a, n, func(ctx context.Context) (net.Conn, error) {
		conn, err := dl.DialContext(ctx, target)
		var ce *tunnel.CloseError
		if errors.As(err, &ce) && ce.Code == tunnel.CodeLookupFailed {
			// The cached zone may be stale: look the node up afresh next time.
			a.Forget(n)
		}
		return conn, err
	}, nil
}
