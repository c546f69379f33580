package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/term"

	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/knownhosts"
	"github.com/gkessh/gkessh/sshclient"
	"github.com/gkessh/gkessh/tunnel"
)

// sshOptions are the flags and arguments of `gkessh [USER@]NODE [-- CMD…]`.
type sshOptions struct {
	globalOptions
	keyOptions
	Node               string
	Strict             knownhosts.StrictMode
	AcceptChanged      bool // --accept-changed-host-keys
	PropagationTimeout time.Duration
	InternalIP         bool
	DryRun             bool
	Port               int
	ForceTTY           bool
	ForwardAgent       bool
	LocalForwards      []sshclient.Forward // -L
	RemoteForwards     []sshclient.Forward // -R
	NoCommand          bool                // -N: forwards only
	Command            []string            // after "--"; empty for a shell
}

// alreadyPresentWait is how long a login waits for a key that was already
// in metadata: another gkessh may have written it moments ago (parallel
// runs, or a project key still reaching this node).
const alreadyPresentWait = 15 * time.Second

// acceptChangedFlag lets the keys a guest publishes replace changed
// recorded ones (knownhosts.Pin), in logins, config-ssh and inventory.
var acceptChangedFlag = &ucli.BoolFlag{Name: "accept-changed-host-keys", Usage: "when a node's guest publishes host keys other than the recorded ones (rebuilt node, regenerated keys), record them in place of the old ones instead of refusing"}

// strictFlag is the host key policy of the commands that log in natively.
var strictFlag = &ucli.StringFlag{Name: "strict-host-key-checking", Value: string(knownhosts.StrictAcceptNew), Usage: "yes: only recorded or guest-published host keys; accept-new: also trust on first use when the guest published none; no: accept any"}

// strictFlagValue reads and checks --strict-host-key-checking.
func strictFlagValue(c *ucli.Context) (knownhosts.StrictMode, error) {
	m, err := knownhosts.ParseStrictMode(c.String("strict-host-key-checking"))
	if err != nil {
		return m, usagef("--strict-host-key-checking: %v", err)
	}
	return m, nil
}

// checkPort refuses a --port that no node can listen on.
func checkPort(port int) error {
	if port <= 0 || port > 65535 {
		return usagef("--port %d: want 1-65535", port)
	}
	return nil
}

func sshFlags() []ucli.Flag {
	return append(append(googleFlags(), keyFlags()...),
		strictFlag,
		acceptChangedFlag,
		propagationFlag,
		&ucli.BoolFlag{Name: "internal-ip", Usage: "connect to the node's internal IP directly instead of through IAP"},
		&ucli.BoolFlag{Name: "tunnel-through-iap", Usage: "go through IAP: the default, accepted so gcloud command lines work"},
		&ucli.StringSliceFlag{Name: "ssh-flag", Usage: "ssh `OPTS` as gcloud passes them, such as \"-L 8080:localhost:80\": read as gkessh's own"},
		&ucli.StringFlag{Name: "command", Usage: "`COMMAND` to run on the node, as gcloud's --command; the same as one word after --"},
		&ucli.BoolFlag{Name: "dry-run", Usage: "say what would be done, change nothing and do not connect"},
		&ucli.IntFlag{Name: "port", Value: 22, Usage: "the node's SSH port"},
		&ucli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "request a terminal for COMMAND too (for sudo, top…)"},
		&ucli.BoolFlag{Name: "forward-agent", Aliases: []string{"A"}, Usage: "forward your ssh-agent (SSH_AUTH_SOCK) to the node, like ssh -A; only to nodes you trust"},
		&ucli.StringSliceFlag{Name: "local-forward", Aliases: []string{"L"}, Usage: "like ssh -L: `SPEC` [BIND:]PORT:HOST:HOSTPORT forwards local PORT to HOST:HOSTPORT as the node sees it (repeatable)"},
		&ucli.StringSliceFlag{Name: "remote-forward", Aliases: []string{"R"}, Usage: "like ssh -R: `SPEC` [BIND:]PORT:HOST:HOSTPORT has the node listen on PORT and forward to HOST:HOSTPORT as this machine sees it (repeatable)"},
		&ucli.BoolFlag{Name: "no-command", Aliases: []string{"N"}, Usage: "run no command or shell, only the forwards, until interrupted, like ssh -N"},
	)
}

func sshFlagValues(c *ucli.Context) (sshOptions, error) {
	k, err := keyFlagValues(c)
	if err != nil {
		return sshOptions{}, err
	}
	o := sshOptions{
		globalOptions:      globals(c),
		keyOptions:         k,
		PropagationTimeout: c.Duration("propagation-timeout"),
		InternalIP:         c.Bool("internal-ip"),
		DryRun:             c.Bool("dry-run"),
		Port:               c.Int("port"),
		ForceTTY:           c.Bool("tty"),
		ForwardAgent:       c.Bool("forward-agent"),
		NoCommand:          c.Bool("no-command"),
		AcceptChanged:      c.Bool("accept-changed-host-keys"),
	}
	for _, fl := range []struct {
		name string
		to   *[]sshclient.Forward
	}{{"local-forward", &o.LocalForwards}, {"remote-forward", &o.RemoteForwards}} {
		for _, spec := range c.StringSlice(fl.name) {
			f, err := sshclient.ParseForward(spec)
			if err != nil {
				return o, usagef("--%s %v", fl.name, err)
			}
			*fl.to = append(*fl.to, f)
		}
	}
	args := c.Args().Slice()
	if len(args) == 0 {
		return o, usagef("no NODE given: gkessh [flags] [USER@]NODE [-- COMMAND...]")
	}
	o.Node, args = args[0], args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	o.Command = args
	if c.IsSet("command") {
		if len(args) > 0 {
			return o, usagef("--command and a command after the node: give one")
		}
		o.Command = []string{c.String("command")}
	}
	if o.InternalIP && c.Bool("tunnel-through-iap") {
		return o, usagef("--internal-ip and --tunnel-through-iap: pick one")
	}
	if user, node, ok := strings.Cut(o.Node, "@"); ok {
		if c.IsSet("user") && user != o.User {
			return o, usagef("user %q in %s differs from --user %q", user, o.Node, o.User)
		}
		o.User, o.Node = user, node
	}
	if o.User != "" {
		if err := checkUser("user", o.User); err != nil {
			return o, err
		}
	}
	if o.Strict, err = strictFlagValue(c); err != nil {
		return o, err
	}
	if err := checkPort(o.Port); err != nil {
		return o, err
	}
	if o.PropagationTimeout <= 0 {
		return o, usagef("--propagation-timeout %v: want a positive duration", o.PropagationTimeout)
	}
	if o.NoCommand && len(o.Command) > 0 {
		return o, usagef("-N runs no command, but %q was given", strings.Join(o.Command, " "))
	}
	return o, nil
}

// runSSH logs in to the node and runs the session. Every failure of its
// own exits 255, as ssh does, so a remote status is never confused with it.
func runSSH(ctx context.Context, o sshOptions, d *deps, stdio Stdio) error {
	d.dryRun = o.DryRun
	err := login{o, d}.run(ctx, stdio)
	var ue usageError
	var ee exitError
	if err == nil || errors.As(err, &ue) || (errors.As(err, &ee) && ee.remote) {
		return err // report gives usage errors 255 in login mode
	}
	if errors.As(err, &ee) {
		// Such as a key file others can read: 2 elsewhere, 255 here.
		return exitError{code: exitFailure, err: ee.err}
	}
	var hke *knownhosts.HostKeyError
	var hkc *knownhosts.HostKeyChangedError
	if (errors.As(err, &hke) && len(hke.Want) > 0 && !hke.Revoked) || errors.As(err, &hkc) {
		fmt.Fprint(stdio.Err, "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"+
			"@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"+
			"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n")
	}
	return exitError{code: exitFailure, err: err}
}

// login is one run of gkessh NODE: its options and the world it works on.
type login struct {
	sshOptions
	d *deps
}

func (o login) run(ctx context.Context, stdio Stdio) error {
	logf := o.d.logger(o.Verbose)
	start := o.d.now()
	user, err := o.d.user(o.keyOptions)
	if err != nil {
		return err
	}
	keyPath, err := o.d.keyFile(o.keyOptions)
	if err != nil {
		return err
	}
	c, err := o.d.compute(ctx, o.globalOptions)
	if err != nil {
		return err
	}
	r, inst, err := o.d.instance(ctx, o.globalOptions, c, o.Node)
	if err != nil {
		if cmd := nearCommand(o.Node); cmd != "" {
			return &nearCommandError{err, cmd}
		}
		return err
	}
	logf("found %s (id %d) in %v", r, r.ID, time.Since(start).Round(time.Millisecond))
	if inst.Status != "RUNNING" {
		return notRunning(r, inst.Status)
	}
	if o.DryRun {
		return o.dryRun(ctx, stdio, c, r, inst, user, keyPath)
	}
	fwds, err := listenLocal(ctx, o.LocalForwards)
	if err != nil {
		return err
	}
	defer closeAll(fwds)
	dial, err := o.dialer(ctx, stdio, r, inst)
	if err != nil {
		return err
	}
	fresh := dial
	dial, release, err := sshclient.OpenFirst(ctx, dial)
	if err != nil {
		return err
	}
	defer release()

	kp, err := loadKey(keyPath, stdio.Err)
	if err != nil {
		return err
	}
	defer kp.Close()
	// Host keys before metadata: a refused host key leaves no key line.
	check, err := o.hostKeyCheck(ctx, stdio, c, r, inst)
	if err != nil {
		return err
	}
	cfg := sshclient.Config{
		User: user, Signers: []ssh.Signer{kp.Signer},
		HostKeyCallback: check.Callback, HostKeyAlgorithms: check.Algorithms,
		HostKeyAlias: knownhosts.HostAlias(r.ID), Name: r.Name,
		Progress: stdio.Err, Live: isTerminal(stdio.Err),
		Logf: logf,
	}
	if !o.Verbose {
		cfg.Logf = nil // no lines to make room for on the waiting line
	}
	// With --internal-ip nothing else names the address a failure is at
	// (a closed port shows as "ssh: handshake failed: EOF").
	via := func(err error) error {
		if err == nil || !o.InternalIP {
			return err
		}
		ip := net.JoinHostPort(inst.NetworkInterfaces[0].NetworkIP, strconv.Itoa(o.Port))
		return fmt.Errorf("%s at its internal IP %s: %w", r.Name, ip, err)
	}
	// The probe dials afresh, leaving the open tunnel for the login.
	client, err := o.probeBeforeWrite(ctx, c, r, inst, kp, user, fresh, cfg)
	var ole *osLoginError
	var res keys.EnsureResult
	switch {
	case errors.As(err, &ole):
		// As gcloud does: the key goes into the OS Login profile, and the
		// login is as its POSIX user; no metadata is written.
		if user, err = o.d.importOSLoginKey(ctx, c, kp.Public, o.ExpireAfter, sayTo(stdio.Err)); err != nil {
			return err
		}
		cfg.User, res.Wrote = user, true
	case err != nil:
		return via(err)
	default:
		var where string
		res, where, err = ensureKey(ctx, c, o.keyOptions, r, inst, kp.Public, keys.EnsureOptions{User: user, Logf: logf})
		if err != nil {
			if client != nil {
				client.Close()
			}
			return err
		}
		if res.Wrote {
			fmt.Fprintf(stdio.Err, "Added %s's key to %s%s.\n", user, where, expiryNote(keys.ParseLine(res.Line)))
		} else {
			logf("%s's key is already in %s", user, where)
		}
	}
	logf("key ready after %v", time.Since(start).Round(time.Millisecond))
	if client == nil {
		cfg.Wait, cfg.Timeout = true, o.PropagationTimeout
		if !res.Wrote {
			cfg.Timeout = min(cfg.Timeout, alreadyPresentWait)
		}
		if client, err = sshclient.Connect(ctx, dial, cfg); err != nil {
			return via(err)
		}
	}
	defer client.Close()
	logf("logged in as %s after %v", user, time.Since(start).Round(time.Millisecond))
	if fwds, err = listenRemote(client, o.RemoteForwards, fwds, r.Name); err != nil {
		return err
	}
	stopForwards := serveForwards(ctx, stdio, client, fwds, r.Name)
	defer stopForwards()
	if o.NoCommand {
		// Until interrupted, or until the node goes away.
		done := make(chan struct{})
		go func() {
			client.Wait()
			close(done)
		}()
		select {
		case <-ctx.Done():
			// Forwards first, so the node hears -R's listeners cancelled.
			stopForwards()
			client.Close()
			<-done
			return nil
		case <-done:
			return fmt.Errorf("connection to %s closed", r.Name)
		}
	}
	return o.session(ctx, stdio, client)
}

// probeBeforeWrite tries one login before a key line is written, so the
// server's host key is checked first: a refused host key must leave no
// metadata behind, as a refused tunnel does. It returns the client when
// the key already works, nil when the server is fine but refuses the key
// (yet), and does nothing when no write is due.
func (o login) probeBeforeWrite(ctx context.Context, c *gce.Client, r resolved, inst *gce.Instance, kp *keys.KeyPair, user string, dial sshclient.DialFunc, cfg sshclient.Config) (*ssh.Client, error) {
	due, _, err := ensureKey(ctx, c, o.keyOptions, r, inst, kp.Public, keys.EnsureOptions{User: user, DryRun: true})
	if err != nil || !due.Wrote {
		return nil, err
	}
	client, err := sshclient.Connect(ctx, dial, cfg)
	if err != nil && !sshclient.IsAuthFailure(err) {
		return nil, err
	}
	return client, nil
}

// notRunning is the one message for a node that is not RUNNING, for the
// login and doctor alike.
func notRunning(r resolved, status string) error {
	return fmt.Errorf("instance %s is %s, not RUNNING: start it (gcloud compute instances start %s --zone %s) and retry", r, status, r.Name, r.Zone)
}

// hostKeyCheck prepares the host key check for r, reading the keys its
// guest published unless host keys go unchecked, and applying the one host
// key policy (knownhosts.Pin) to them.
func (o login) hostKeyCheck(ctx context.Context, stdio Stdio, c *gce.Client, r resolved, inst *gce.Instance) (*knownhosts.HostKeyCheck, error) {
	path, err := o.d.knownHosts()
	if err != nil {
		return nil, err
	}
	v := knownhosts.Verifier{
		File: knownhosts.KnownHosts{Path: path}, Node: r.Name, Alias: knownhosts.HostAlias(r.ID),
		Source: publishedSource(r), Accept: o.AcceptChanged, Mode: o.Strict, Warn: stdio.Err,
	}
	if o.Strict != knownhosts.StrictNo && gce.GuestAttributesEnabled(inst) {
		if v.Published, err = c.HostKeys(ctx, r.Zone, r.Name); err != nil {
			// Not fatal: the recorded keys, or trust on first use,
			// still apply.
			fmt.Fprintf(stdio.Err, "gkessh: warning: %v\n", err)
		}
	}
	check, err := v.Prepare()
	if err != nil {
		return nil, err
	}
	if len(check.Pinned) > 0 {
		fmt.Fprintf(stdio.Err, "Pinned %d host keys of %s published by its guest (%s) in %s.\n", len(check.Pinned), r.Name, v.Alias, path)
	}
	reportReplaced(stdio.Err, r, v.Alias, check.Replaced, v.Published)
	return check, nil
}

// publishedSource says where a node's published host keys come from.
func publishedSource(r resolved) string {
	return fmt.Sprintf("its guest attributes (hostkeys/ of %s)", r)
}

// reportReplaced says which recorded host keys --accept-changed-host-keys
// replaced, and with what.
func reportReplaced(w io.Writer, r resolved, alias string, old, published []ssh.PublicKey) {
	if len(old) == 0 {
		return
	}
	fmt.Fprintf(w, "Replaced the host keys of %s (%s): %s, with the ones in %s: %s.\n",
		r.Name, alias, knownhosts.Fingerprints(old), publishedSource(r), knownhosts.Fingerprints(published))
}

// dialer opens connections to the node's SSH port: through IAP, or with
// --internal-ip straight to its first interface's address.
func (o login) dialer(ctx context.Context, stdio Stdio, r resolved, inst *gce.Instance) (sshclient.DialFunc, error) {
	if o.InternalIP {
		if len(inst.NetworkInterfaces) == 0 || inst.NetworkInterfaces[0].NetworkIP == "" {
			return nil, fmt.Errorf("instance %s has no internal IP: drop --internal-ip to go through IAP", r)
		}
		addr := net.JoinHostPort(inst.NetworkInterfaces[0].NetworkIP, strconv.Itoa(o.Port))
		return func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}, nil
	}
	dl, err := o.d.iapDialer(ctx, o.globalOptions)
	if err != nil {
		return nil, err
	}
	target := tunnel.Target{Project: r.Project, Zone: r.Zone, Instance: r.Name, Port: o.Port}
	return func(ctx context.Context) (net.Conn, error) { return dl.DialContext(ctx, target) }, nil
}

// session runs the command, or a shell: with a terminal (PTY, raw mode)
// when stdin is one and there is no command, or with --tty.
func (o login) session(ctx context.Context, stdio Stdio, client *ssh.Client) error {
	s := sshclient.Session{
		Command: sshclient.CommandLine(o.Command),
		Stdin:   stdio.In, Stdout: stdio.Out, Stderr: stdio.Err,
		Env: localeEnv(), Warn: stdio.Err,
		// As config-ssh's ServerAliveInterval: a dead path ends the session.
		AliveInterval: 30 * time.Second,
	}
	if o.ForwardAgent {
		conn, err := keys.DialAgent(ctx)
		if err != nil {
			return fmt.Errorf("--forward-agent: %w", err)
		}
		defer conn.Close()
		s.ForwardAgent = agent.NewClient(conn)
	}
	in, _ := stdio.In.(*os.File)
	if in != nil && term.IsTerminal(int(in.Fd())) && (len(o.Command) == 0 || o.ForceTTY) {
		s.PTY, s.Terminal, s.Term = true, in, os.Getenv("TERM")
	} else if o.ForceTTY {
		s.PTY = true
	}
	if len(o.Command) == 0 {
		s.Command = ""
	}
	status, err := sshclient.Run(ctx, client, s)
	if err != nil {
		return exitError{code: exitFailure, err: err}
	}
	if status != 0 {
		return exitError{code: status, remote: true}
	}
	return nil
}

// localeEnv is what OpenSSH's stock ssh_config sends (SendEnv LANG LC_*).
func localeEnv() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if k == "LANG" || strings.HasPrefix(k, "LC_") {
			env[k] = v
		}
	}
	return env
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// dryRun reports what a login would do: the key, the metadata write, the
// host key check and the route, and changes nothing.
func (o login) dryRun(ctx context.Context, stdio Stdio, c *gce.Client, r resolved, inst *gce.Instance, user, keyPath string) error {
	out := stdio.Out
	kp, err := keys.Load(keyPath)
	switch {
	case err != nil && errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(out, "would create key pair %s and add it for %s to metadata\n", keyPath, user)
	case err != nil:
		return err
	default:
		defer kp.Close()
		res, where, err := ensureKey(ctx, c, o.keyOptions, r, inst, kp.Public, keys.EnsureOptions{User: user, DryRun: true})
		var ole *osLoginError
		switch {
		case errors.As(err, &ole):
			if user, err = o.d.osLoginUser(ctx, c); err != nil {
				return err
			}
			fmt.Fprintf(out, "OS Login is on: would import your key %s into your OS Login profile (user %s)\n", ssh.FingerprintSHA256(kp.Public), user)
		case err != nil:
			return err
		case res.Wrote:
			fmt.Fprintf(out, "would add to %s: %s\n", where, res.Line)
		default:
			fmt.Fprintf(out, "%s's key %s is already in %s\n", user, ssh.FingerprintSHA256(kp.Public), where)
		}
	}
	path, err := o.d.knownHosts()
	if err != nil {
		return err
	}
	alias := knownhosts.HostAlias(r.ID)
	rec, err := knownhosts.KnownHosts{Path: path}.Lookup(alias)
	if err != nil {
		return err
	}
	published, err := c.HostKeys(ctx, r.Zone, r.Name)
	switch {
	case len(rec.Keys) > 0:
		fmt.Fprintf(out, "host keys of %s: %d recorded in %s\n", alias, len(rec.Keys), path)
	case err == nil && len(published) > 0 && o.Strict != knownhosts.StrictNo:
		fmt.Fprintf(out, "host keys of %s: would pin the %d its guest published\n", alias, len(published))
	default:
		fmt.Fprintf(out, "host keys of %s: none recorded or published (--strict-host-key-checking=%s)\n", alias, o.Strict)
	}
	route := fmt.Sprintf("an IAP tunnel to %s port %d", r, o.Port)
	if o.InternalIP && len(inst.NetworkInterfaces) > 0 {
		route = fmt.Sprintf("%s:%d directly", inst.NetworkInterfaces[0].NetworkIP, o.Port)
	}
	what := "an interactive shell"
	if len(o.Command) > 0 {
		what = fmt.Sprintf("%q", sshclient.CommandLine(o.Command))
	}
	fmt.Fprintf(out, "would log in as %s through %s and run %s\n", user, route, what)
	return nil
}
