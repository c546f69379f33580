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

	"github.com/gkessh/gkessh/internal/access"
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
	Port               int
	ForceTTY           bool
	ForwardAgent       bool
	LocalForwards      []sshclient.Forward // -L
	RemoteForwards     []sshclient.Forward // -R
	NoCommand          bool                // -N: forwards only
	Plain              bool                // --plain: the user's own keys, none managed
	Container          string              // --container: the command runs in this container
	Troubleshoot       bool                // --troubleshoot: doctor's checks instead of a login
	Command            []string            // after "--"; empty for a shell
}

// alreadyPresentWait is how long a login waits for a key that was already
// in metadata: another gkessh may have written it moments ago (parallel
// runs, or a project key still reaching this node).
const alreadyPresentWait = 15 * time.Second

// checkPort refuses a --port that no node can listen on.
func checkPort(port int) error {
	if port <= 0 || port > 65535 {
		return usagef("--port %d: want 1-65535", port)
	}
	return nil
}

// sshFlags are the login's own flags, besides the global ones.
func sshFlags() []ucli.Flag {
	return []ucli.Flag{
		acceptChangedFlag(),
		propagationFlag(),
		&ucli.BoolFlag{Name: "internal-ip", Usage: "connect to the node's internal IP directly instead of through IAP"},
		&ucli.BoolFlag{Name: "tunnel-through-iap", Usage: "go through IAP: the default, accepted so gcloud command lines work"},
		&ucli.StringSliceFlag{Name: "ssh-flag", Usage: "ssh `OPTS` as gcloud passes them, such as \"-L 8080:localhost:80\": read as gkessh's own"},
		&ucli.StringFlag{Name: "command", Usage: "`COMMAND` to run on the node, as gcloud's --command; the same as one word after --"},
		&ucli.IntFlag{Name: "port", Value: 22, Usage: "the node's SSH port"},
		&ucli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "request a terminal for COMMAND too (for sudo, top…)"},
		&ucli.BoolFlag{Name: "forward-agent", Aliases: []string{"A"}, Usage: "forward your ssh-agent (SSH_AUTH_SOCK) to the node, like ssh -A; only to nodes you trust"},
		&ucli.StringSliceFlag{Name: "local-forward", Aliases: []string{"L"}, Usage: "like ssh -L: `SPEC` [BIND:]PORT:HOST:HOSTPORT forwards local PORT to HOST:HOSTPORT as the node sees it (repeatable)"},
		&ucli.StringSliceFlag{Name: "remote-forward", Aliases: []string{"R"}, Usage: "like ssh -R: `SPEC` [BIND:]PORT:HOST:HOSTPORT has the node listen on PORT and forward to HOST:HOSTPORT as this machine sees it (repeatable)"},
		&ucli.BoolFlag{Name: "no-command", Aliases: []string{"N"}, Usage: "run no command or shell, only the forwards, until interrupted, like ssh -N"},
		plainFlag(),
		troubleshootFlag(),
		&ucli.StringFlag{Name: "container", Usage: "gcloud's: run COMMAND (else a shell) in the container `NAME` (or ID) on the node: sudo docker exec, or sudo crictl exec on a GKE node"},
	}
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
		Port:               c.Int("port"),
		ForceTTY:           c.Bool("tty"),
		ForwardAgent:       c.Bool("forward-agent"),
		NoCommand:          c.Bool("no-command"),
		AcceptChanged:      c.Bool("accept-changed-host-keys"),
		Plain:              c.Bool("plain"),
		Container:          c.String("container"),
		Troubleshoot:       c.Bool("troubleshoot"),
	}
	if c.IsSet("container") {
		if err := checkContainer(o.Container); err != nil {
			return o, err
		}
	}
	if o.Plain {
		if err := checkPlain(c); err != nil {
			return o, err
		}
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
		return o, usagef("no NODE given")
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
	if o.Strict, err = strictFlagValue(c, knownhosts.StrictAcceptNew); err != nil {
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
	if o.NoCommand && o.Container != "" {
		return o, usagef("-N runs no command, so nothing would run in --container %s", o.Container)
	}
	if o.Troubleshoot {
		if err := checkTroubleshoot(c, o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// runSSH logs in to the node and runs the session. Every failure of its
// own exits 255, as ssh does, so a remote status is never confused with it.
func runSSH(ctx context.Context, o sshOptions, d *deps, stdio Stdio) error {
	if o.Troubleshoot {
		return troubleshoot(ctx, o, d, stdio)
	}
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
	if report, ok := changedHostKeyReport(err); ok {
		fmt.Fprint(stdio.Err, "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"+
			"@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"+
			"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"+
			printableLines(report))
		return exitError{code: exitFailure}
	}
	return exitError{code: exitFailure, err: err}
}

// changedHostKeyReport is a login's account of a host key that changed,
// under OpenSSH's banner and, as ssh's own, a fact a line: as one line
// (the error's text and its hint) it ran to 600 characters and more.
func changedHostKeyReport(err error) (string, bool) {
	var hke *knownhosts.HostKeyError
	var hkc *knownhosts.HostKeyChangedError
	var b strings.Builder
	keyLines := func(ks ...ssh.PublicKey) {
		for _, k := range ks {
			fmt.Fprintf(&b, "  %s %s\n", k.Type(), ssh.FingerprintSHA256(k))
		}
	}
	switch {
	case errors.As(err, &hkc):
		fmt.Fprintf(&b, "gkessh: host keys of %s (%s) have CHANGED.\n%s records:\n", hkc.Node, hkc.Alias, hkc.File)
		keyLines(hkc.Old...)
		fmt.Fprintf(&b, "but %s now hold:\n", hkc.Source)
		keyLines(hkc.New...)
		b.WriteString("Either the node was rebuilt or its keys regenerated, or someone is tampering with it.\n")
	case errors.As(err, &hke) && len(hke.Want) > 0 && !hke.Revoked:
		name := hke.Alias
		if hke.Node != "" {
			name = hke.Node + " (" + hke.Alias + ")"
		}
		fmt.Fprintf(&b, "gkessh: host key of %s has CHANGED.\nThe server presented:\n", name)
		keyLines(hke.Got)
		fmt.Fprintf(&b, "but %s records:\n", hke.File)
		keyLines(hke.Want...)
		b.WriteString("Someone could be intercepting the connection (man-in-the-middle attack), or the node's host keys were regenerated.\n")
		if !hke.Published {
			fmt.Fprintf(&b, "Its guest does not publish the presented key. If you trust the change anyway, remove the old keys with:\n  ssh-keygen -R %s -f %s\n", hke.Alias, hke.File)
			return b.String(), true
		}
		b.WriteString("Its guest publishes the presented key.\n")
	default:
		return "", false
	}
	if h := hint(err); h != "" {
		b.WriteString(strings.ToUpper(h[:1]) + h[1:] + ".\n")
	}
	return b.String(), true
}

// login is one run of gkessh NODE: its options and the world it works on.
type login struct {
	sshOptions
	d *deps
}

func (o login) run(ctx context.Context, stdio Stdio) error {
	logf := o.d.logger(o.Verbose)
	start := o.d.now()
	if err := checkNode(o.Node, o.Zone); err != nil {
		return err
	}
	a, err := newAccess(ctx, o.globalOptions, o.keyOptions, o.d, stdio, accessOptions{
		Strict: o.Strict, AcceptChanged: o.AcceptChanged, DryRun: o.DryRun, Progress: true})
	if err != nil {
		return err
	}
	defer a.Close()
	if o.Plain {
		return o.plain(ctx, stdio, a, start)
	}
	p, err := a.Plan(ctx, o.Node)
	if err != nil {
		return asNearCommand(o.Node, err)
	}
	logf("found %s (id %d) in %v", p.Node, p.Node.ID, time.Since(start).Round(time.Millisecond))
	if p.Inst.Status != "RUNNING" {
		return notRunning(p.Node, p.Inst.Status)
	}
	o.inContainer(p.Inst, stdio.In)
	if o.DryRun {
		return o.dryRun(ctx, stdio, a, p)
	}
	fwds, err := listenLocal(ctx, o.LocalForwards)
	if err != nil {
		return err
	}
	defer closeAll(fwds)
	fresh, err := o.dialer(ctx, p)
	if err != nil {
		return err
	}
	dial, release, err := sshclient.OpenFirst(ctx, fresh)
	if err != nil {
		return err
	}
	defer release()
	// The probe dials afresh, leaving the open tunnel for the login.
	client, err := o.enter(ctx, stdio, a, p, fresh, dial, start)
	if err != nil {
		return err
	}
	defer client.Close()
	logf("logged in as %s after %v", p.User, time.Since(start).Round(time.Millisecond))
	if fwds, err = listenRemote(client, o.RemoteForwards, fwds, p.Node.Name); err != nil {
		return err
	}
	stopForwards := serveForwards(ctx, stdio, client, fwds, p.Node.Name)
	defer stopForwards()
	if o.NoCommand {
		return waitForwards(ctx, client, stopForwards, p.Node.Name)
	}
	return o.session(ctx, stdio, client)
}

// enter gets the user onto p's node: a probe over fresh when a write is
// due, the grant, then the login over dial, waiting for a new key (or
// briefly for one already there, which another gkessh may have written
// moments ago); it says what it wrote.
func (o login) enter(ctx context.Context, stdio Stdio, a *access.Access, p *access.Plan, fresh, dial sshclient.DialFunc, start time.Time) (*ssh.Client, error) {
	logf := o.d.logger(o.Verbose)
	// With --internal-ip nothing else names the address a failure is at
	// (a closed port shows as "ssh: handshake failed: EOF").
	via := func(err error) error {
		if err == nil || !o.InternalIP {
			return err
		}
		ip := net.JoinHostPort(p.Inst.NetworkInterfaces[0].NetworkIP, strconv.Itoa(o.Port))
		return fmt.Errorf("%s at its internal IP %s: %w", p.Node.Name, ip, err)
	}
	client, g, err := a.Admit(ctx, p, fresh)
	if err != nil {
		return nil, via(err)
	}
	if p.Mode == access.OSLogin && o.User != "" && p.User != o.User {
		// gcloud's words, when a user was asked for.
		fmt.Fprintf(stdio.Err, "Using OS Login user [%s] instead of requested user [%s]\n", printable(p.User), o.User)
	} else if def, err := userOf(o.d, o.keyOptions); p.Mode == access.OSLogin && err == nil && p.User != def {
		// gcloud logs this at info, which -v shows.
		logf("Using OS Login user [%s] instead of default user [%s]", printable(p.User), def)
	}
	if msg := granted(g, p); msg != "" {
		fmt.Fprintln(stdio.Err, msg)
	} else if g.Mode == access.MetadataKeys {
		logf("%s's key is already in %s", p.User, grantedWhere(g, p.Node.Name))
	}
	logf("key ready after %v", time.Since(start).Round(time.Millisecond))
	if client != nil {
		return client, nil
	}
	wait := o.PropagationTimeout
	if !g.Wrote {
		wait = min(wait, alreadyPresentWait)
	}
	client, err = a.Login(ctx, p, dial, wait)
	return client, via(err)
}

// waitForwards serves -N's forwards until interrupted, or until the node
// goes away.
func waitForwards(ctx context.Context, client *ssh.Client, stopForwards func(), node string) error {
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
		return fmt.Errorf("connection to %s closed", node)
	}
}

// dialer opens connections to the node's SSH port: through IAP, or with
// --internal-ip straight to its first interface's address.
func (o login) dialer(ctx context.Context, p *access.Plan) (sshclient.DialFunc, error) {
	if o.InternalIP {
		return internalDialer(p.Inst, p.Node.String(), o.Port)
	}
	dl, err := o.d.iapDialer(ctx, o.globalOptions)
	if err != nil {
		return nil, err
	}
	target := tunnel.Target{Project: p.Node.Project, Zone: p.Node.Zone, Instance: p.Node.Name, Port: o.Port}
	return func(ctx context.Context) (net.Conn, error) { return dl.DialContext(ctx, target) }, nil
}

// internalDialer dials inst's first interface's address at port, as
// --internal-ip asks (login and cp); node names inst when it has none.
func internalDialer(inst *gce.Instance, node string, port int) (sshclient.DialFunc, error) {
	if len(inst.NetworkInterfaces) == 0 || inst.NetworkInterfaces[0].NetworkIP == "" {
		return nil, fmt.Errorf("instance %s has no internal IP: drop --internal-ip to go through IAP", node)
	}
	addr := net.JoinHostPort(inst.NetworkInterfaces[0].NetworkIP, strconv.Itoa(port))
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}, nil
}

// session runs the command, or a shell: with a terminal (PTY, raw mode)
// when stdin is one and there is no command, or with --tty.
func (o login) session(ctx context.Context, stdio Stdio, client *ssh.Client) error {
	s := sshclient.Session{
		Command: sshclient.CommandLine(o.Command),
		Stdin:   stdio.In, Stdout: stdio.Out, Stderr: stdio.Err,
		Env: localeEnv(o.d.environ()), Warn: stdio.Err,
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
		s.PTY, s.Terminal = true, in
		s.Term, _ = o.d.env("TERM")
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

// localeEnv is what of environ OpenSSH's stock ssh_config sends (SendEnv
// LANG LC_*).
func localeEnv(environ []string) map[string]string {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if k == "LANG" || strings.HasPrefix(k, "LC_") {
			env[k] = v
		}
	}
	return env
}

// keyDryRun says what a dry run would do with the key for p: create it,
// write it, or rely on it where it already is.
func keyDryRun(out io.Writer, d *deps, k keyOptions, p *access.Plan) error {
	keyPath, err := keyFileOf(d, k)
	if err != nil {
		return err
	}
	kp, err := keys.Load(keyPath)
	var kfe *keys.KeyFileError
	switch {
	case err != nil && errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(out, "would create key pair %s and add it for %s to metadata\n", keyPath, p.User)
	case k.ForceOverwrite && errors.As(err, &kfe) && kfe.Broken:
		fmt.Fprintf(out, "would replace the key pair %s with a new one (%v) and add it for %s to metadata\n", keyPath, err, p.User)
	case err != nil:
		return err
	default:
		defer kp.Close()
		fp := ssh.FingerprintSHA256(kp.Public)
		switch {
		case p.Mode == access.OSLogin && p.WriteDue:
			fmt.Fprintf(out, "OS Login is on: would import your key %s into your OS Login profile (user %s): %s\n", fp, printable(p.User), p.Why)
		case p.Mode == access.OSLogin:
			fmt.Fprintf(out, "OS Login is on: your key %s is in your OS Login profile (user %s), %s\n", fp, printable(p.User), whenExpires(p.Expire))
		case p.WriteDue:
			fmt.Fprintf(out, "would add to %s (%s): %s\n", describeScope(p.Scope, p.Item, p.Node.Name), p.Why, p.Line)
		default:
			fmt.Fprintf(out, "%s's key %s is already in %s, %s\n", p.User, fp, describeScope(p.Scope, p.Item, p.Node.Name), whenExpires(p.Expire))
		}
	}
	return nil
}

// dryRun reports what a login would do: the key, the key write, the host
// key check and the route, from the plan, and changes nothing.
func (o login) dryRun(ctx context.Context, stdio Stdio, a *access.Access, p *access.Plan) error {
	out := stdio.Out
	if err := keyDryRun(out, o.d, o.keyOptions, p); err != nil {
		return err
	}
	hk, err := a.HostKeys(ctx, p)
	if err != nil {
		return err
	}
	path, err := o.d.knownHosts()
	if err != nil {
		return err
	}
	switch {
	case len(hk.Recorded.Keys) > 0:
		fmt.Fprintf(out, "host keys of %s: %d recorded in %s\n", hk.Alias, len(hk.Recorded.Keys), path)
	case len(hk.Published) > 0:
		fmt.Fprintf(out, "host keys of %s: would pin the %d its guest published\n", hk.Alias, len(hk.Published))
	default:
		fmt.Fprintf(out, "host keys of %s: none recorded or published (--strict-host-key-checking=%s)\n", hk.Alias, o.Strict)
	}
	route := fmt.Sprintf("an IAP tunnel to %s port %d", p.Node, o.Port)
	if o.InternalIP && len(p.Inst.NetworkInterfaces) > 0 {
		route = fmt.Sprintf("%s:%d directly", p.Inst.NetworkInterfaces[0].NetworkIP, o.Port)
	}
	what := "an interactive shell"
	if len(o.Command) > 0 {
		what = fmt.Sprintf("%q", sshclient.CommandLine(o.Command))
	}
	fmt.Fprintf(out, "would log in as %s through %s and run %s\n", printable(p.User), route, what)
	return nil
}
