// Package fleet runs one command on many nodes at once, over IAP and the
// native SSH client: it puts the user's key into metadata with one write for
// the whole run (into the OS Login profile, once, for nodes under OS Login),
// pins every node's host keys, runs the command on up to N
// nodes at a time with stdin broadcast to each, and returns one result per
// node.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/knownhosts"
	"github.com/gkessh/gkessh/sshclient"
)

// Status is how a node's run ended.
type Status string

// The statuses, from best to worst as the summary orders them.
const (
	OK          Status = "ok"          // the command exited 0
	Failed      Status = "failed"      // the command ran and exited non-zero, or timed out
	Unreachable Status = "unreachable" // the command never ran: tunnel, login or key refused
	Cancelled   Status = "cancelled"   // interrupted, or never started after --fail-fast
	Skipped     Status = "skipped"     // matched, but not RUNNING
)

// NoExit is Result.Exit when the command never reported an exit status.
const NoExit = -1

// Result is one node's outcome.
type Result struct {
	Node     string
	Zone     string
	Status   Status
	Exit     int   // the remote exit status, or NoExit
	Err      error // why the node is not OK, when not just its exit status
	Duration time.Duration
}

// Config is one run.
type Config struct {
	Compute *gce.Client
	// Dial opens a connection to inst's SSH port, through IAP usually; ctx
	// bounds the dial only.
	Dial func(ctx context.Context, inst *gce.Instance) (net.Conn, error)

	User        string
	Key         *keys.KeyPair
	Scope       string        // --scope: "", keys.ScopeProject or keys.ScopeInstance
	ExpireAfter time.Duration // lifetime of a written key line
	// OSLogin puts the key into the OS Login profile and returns the
	// profile's POSIX user, whom nodes under OS Login log in as; Run calls
	// it at most once, after the first such node's tunnel opens. nil
	// refuses those nodes.
	OSLogin func(ctx context.Context) (user string, err error)
	// KnownHosts and Strict check host keys as for a login: published keys
	// are pinned on first contact.
	KnownHosts string
	Strict     knownhosts.StrictMode
	// PropagationTimeout bounds the wait for a newly written key.
	PropagationTimeout time.Duration

	Command string
	// Use, when set, replaces Command: it gets the logged-in client (for
	// direct-tcpip probes, say) and its error fails the node.
	Use func(ctx context.Context, inst *gce.Instance, client *ssh.Client) error
	// Stdin, when not nil, opens a node's copy of stdin: once per node, as
	// the node starts; Run closes it when the node is done, read or not.
	Stdin func() io.ReadCloser
	// Parallel is how many nodes run at once (at least 1).
	Parallel int
	// Timeout bounds each node from dial to exit; 0 means none.
	Timeout time.Duration
	// FailFast starts no new node after the first that is not OK.
	FailFast bool

	// Output returns where a node's stdout and stderr go; nil discards.
	Output func(node string) (stdout, stderr io.Writer)
	// Done hears each result as it comes, from the node's goroutine.
	Done func(Result)
	// Logf, when set, hears what is being done.
	Logf func(format string, args ...any)
}

// keyWait is how long a node waits for a key that another node already
// accepted, or that was in metadata before the run: its guest agent may lag
// a little behind the others.
const keyWait = 15 * time.Second

// Run runs cfg.Command on every instance and returns one result each, in
// the order given. It fails as a whole only when the key cannot be put in
// project metadata; then no command was run.
func Run(ctx context.Context, cfg Config, insts []*gce.Instance) ([]Result, error) {
	if cfg.Parallel < 1 {
		cfg.Parallel = 1
	}
	proj, err := cfg.Compute.Project(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r := &run{cfg: cfg, proj: proj, results: make([]Result, len(insts)), gate: newGate(), cancel: cancel}
	r.keyNode = r.projectKeyNode(insts)
	if r.keyNode == nil {
		r.gate.openNow() // nothing new to wait for
	}
	// A worker per slot, fed in order, so at most Parallel nodes are in
	// flight and no goroutine outlives Run.
	stop := make(chan struct{})
	var stopOnce sync.Once
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(cfg.Parallel, len(insts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				res := r.node(ctx, insts[i])
				r.finish(i, res)
				if res.Status != OK && cfg.FailFast {
					stopOnce.Do(func() { close(stop) })
				}
			}
		}()
	}
	i := 0
feed:
	for ; i < len(insts); i++ {
		select {
		case next <- i:
		case <-stop:
			break feed
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for ; i < len(insts); i++ {
		why := errors.New("not started: interrupted")
		if ctx.Err() == nil {
			why = errors.New("not started: an earlier node failed")
		}
		r.finish(i, Result{Node: insts[i].Name, Zone: gce.ZoneName(insts[i].Zone), Status: Cancelled, Exit: NoExit, Err: why})
	}
	if r.keyErr != nil {
		return nil, r.keyErr
	}
	return r.results, nil
}

type run struct {
	cfg    Config
	gate   *gate
	proj   *gce.Project
	cancel context.CancelCauseFunc // ends the run when the project key cannot be written

	// keyNode is a node that reads project keys, through which the one
	// project write goes; nil when no node does. keyOnce makes that write
	// once, after the first tunnel opens, so a run whose every node is
	// refused changes no metadata; keyErr is its failure.
	keyNode *gce.Instance
	keyOnce sync.Once
	keyErr  error

	// posix is cfg.OSLogin's answer, asked once (posixOnce).
	posixOnce sync.Once
	posix     string
	posixErr  error

	mu      sync.Mutex
	results []Result
}

func (r *run) finish(i int, res Result) {
	r.mu.Lock()
	r.results[i] = res
	r.mu.Unlock()
	if r.cfg.Done != nil {
		r.cfg.Done(res)
	}
}

func (r *run) logf(format string, args ...any) {
	if r.cfg.Logf != nil {
		r.cfg.Logf(format, args...)
	}
}

// projectKeyNode returns the first instance that reads project keys, or nil.
func (r *run) projectKeyNode(insts []*gce.Instance) *gce.Instance {
	for _, inst := range insts {
		if gce.OSLoginEnabled(inst, r.proj) {
			continue
		}
		if scope, err := keys.Scope(r.cfg.Scope, inst); err == nil && scope == keys.ScopeProject {
			return inst
		}
	}
	return nil
}

// ensureProjectKey writes the key to project metadata, once for the run, if
// it is not there yet; a failure ends the run. Nodes call it once their
// tunnel is open.
func (r *run) ensureProjectKey(ctx context.Context) error {
	r.keyOnce.Do(func() {
		res, err := keys.Ensure(ctx, r.cfg.Compute, r.keyNode, r.cfg.Key.Public, r.ensureOptions())
		if err != nil {
			r.keyErr = err
			r.cancel(err)
			r.gate.openNow()
			return
		}
		if res.Wrote {
			r.logf("added %s's key to project metadata", r.cfg.User)
		} else {
			r.gate.openNow() // nothing new to wait for
		}
	})
	return r.keyErr
}

func (r *run) ensureOptions() keys.EnsureOptions {
	return keys.EnsureOptions{User: r.cfg.User, Scope: r.cfg.Scope, ExpireAfter: r.cfg.ExpireAfter, Logf: r.cfg.Logf}
}

// node runs the command on one instance.
func (r *run) node(parent context.Context, inst *gce.Instance) Result {
	start := time.Now()
	res := Result{Node: inst.Name, Zone: gce.ZoneName(inst.Zone), Exit: NoExit}
	ctx := parent
	if r.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(parent, r.cfg.Timeout)
		defer cancel()
	}
	var stdin io.ReadCloser
	if r.cfg.Stdin != nil {
		stdin = r.cfg.Stdin()
		defer stdin.Close()
	}
	status, ran, err := r.exec(ctx, inst, stdin)
	res.Duration = time.Since(start)
	switch {
	case parent.Err() != nil:
		res.Status, res.Err = Cancelled, errors.New("interrupted")
		if ran {
			res.Err = errors.New("interrupted while running")
		}
	case ctx.Err() != nil:
		res.Status, res.Err = Unreachable, fmt.Errorf("timed out after %v before the command started", r.cfg.Timeout)
		if ran {
			res.Status, res.Err = Failed, fmt.Errorf("timed out after %v", r.cfg.Timeout)
		}
	case err != nil && ran:
		res.Status, res.Err = Failed, err
	case err != nil:
		res.Status, res.Err = Unreachable, err
	case status != 0:
		res.Status, res.Exit = Failed, status
	default:
		res.Status, res.Exit = OK, 0
	}
	return res
}

// exec logs in and runs the command. ran says whether the command started,
// so that a failure can be told from an unreachable node.
func (r *run) exec(ctx context.Context, inst *gce.Instance, stdin io.Reader) (status int, ran bool, err error) {
	osLogin := gce.OSLoginEnabled(inst, r.proj)
	if osLogin {
		if extras := gce.OSLoginExtras(inst, r.proj); len(extras) > 0 {
			return 0, false, &keys.OSLoginExtrasError{Extras: extras}
		}
		if r.cfg.OSLogin == nil {
			return 0, false, errors.New(keys.OSLoginNote)
		}
	}
	scope, err := keys.Scope(r.cfg.Scope, inst)
	if err != nil {
		return 0, false, err
	}
	check, err := r.hostKeyCheck(ctx, inst)
	if err != nil {
		return 0, false, err
	}
	login := sshclient.Config{
		User: r.cfg.User, Signers: []ssh.Signer{r.cfg.Key.Signer},
		HostKeyCallback: check.Callback, HostKeyAlgorithms: check.Algorithms,
		HostKeyAlias: knownhosts.HostAlias(inst.Id), Name: inst.Name,
		Wait: true, Timeout: keyWait,
	}
	// The tunnel opens before any key is written, so nodes that IAP
	// refuses leave metadata as it was.
	dial, release, err := sshclient.OpenFirst(ctx, func(ctx context.Context) (net.Conn, error) { return r.cfg.Dial(ctx, inst) })
	if err != nil {
		return 0, false, err
	}
	defer release()
	var client *ssh.Client
	if osLogin {
		// The profile's key reaches every OS Login node at once, but each
		// node's guest installs it on its own: each waits.
		r.posixOnce.Do(func() { r.posix, r.posixErr = r.cfg.OSLogin(ctx) })
		if r.posixErr != nil {
			return 0, false, r.posixErr
		}
		login.User, login.Timeout = r.posix, r.cfg.PropagationTimeout
		if client, err = sshclient.Connect(ctx, dial, login); err != nil {
			return 0, false, err
		}
	} else if scope == keys.ScopeInstance {
		// A node that ignores project keys gets its own line, and waits for
		// it on its own.
		res, err := keys.Ensure(ctx, r.cfg.Compute, inst, r.cfg.Key.Public, r.ensureOptions())
		if err != nil {
			return 0, false, err
		}
		if res.Wrote {
			login.Timeout = r.cfg.PropagationTimeout
		}
		client, err = sshclient.Connect(ctx, dial, login)
		if err != nil {
			return 0, false, err
		}
	} else {
		if err := r.ensureProjectKey(ctx); err != nil {
			return 0, false, err
		}
		client, err = r.loginShared(ctx, dial, login)
		if err != nil {
			return 0, false, err
		}
	}
	defer client.Close()
	if r.cfg.Use != nil {
		return 0, true, r.cfg.Use(ctx, inst, client)
	}
	s := sshclient.Session{Command: r.cfg.Command, Stdin: stdin}
	if r.cfg.Output != nil {
		s.Stdout, s.Stderr = r.cfg.Output(inst.Name)
	}
	status, err = sshclient.Run(ctx, client, s)
	return status, true, err
}

// loginShared logs in to a node that reads project keys. After a new
// project key, one node at a time waits for it to propagate; once one has
// taken it the others follow with a short wait, so a run pays one
// propagation wait, not one per node, and does not hammer the relay with
// every node's retries.
func (r *run) loginShared(ctx context.Context, dial sshclient.DialFunc, login sshclient.Config) (*ssh.Client, error) {
	probe, err := r.gate.enter(ctx)
	if err != nil {
		return nil, err
	}
	if !probe {
		// A key the probing node refused after the whole wait will not be
		// taken here either: try once rather than wait again.
		login.Wait = !r.gate.refused.Load()
		return sshclient.Connect(ctx, dial, login)
	}
	login.Timeout = r.cfg.PropagationTimeout
	client, err := sshclient.Connect(ctx, dial, login)
	// Only a login or a refused key says something about the key; after
	// any other failure (the node could not be reached) the next node
	// waits instead.
	var kr *sshclient.KeyRefusedError
	refused := errors.As(err, &kr)
	if refused {
		r.gate.refused.Store(true)
	}
	r.gate.leave(err == nil || refused)
	return client, err
}

// hostKeyCheck pins inst's published host keys on first contact and checks
// the key it presents, as a login does.
func (r *run) hostKeyCheck(ctx context.Context, inst *gce.Instance) (*knownhosts.HostKeyCheck, error) {
	v := knownhosts.Verifier{File: knownhosts.KnownHosts{Path: r.cfg.KnownHosts}, Alias: knownhosts.HostAlias(inst.Id), Mode: r.cfg.Strict}
	if r.cfg.Strict != knownhosts.StrictNo && gce.GuestAttributesEnabled(inst) {
		published, err := r.cfg.Compute.HostKeys(ctx, gce.ZoneName(inst.Zone), inst.Name)
		if err != nil {
			// Not fatal: the recorded keys, or trust on first use, apply.
			r.logf("%s: %v", inst.Name, err)
		}
		v.Published = published
	}
	return v.Prepare()
}

// gate lets one node at a time wait for a new project key to propagate,
// until one has logged in with it; then it opens for all.
type gate struct {
	open  chan struct{} // closed once the key is known to work (or not worth waiting for)
	token chan struct{} // held by the node that waits
	once  sync.Once
	// refused: the probing node waited the whole propagation timeout and
	// its sshd still refused the key.
	refused atomic.Bool
}

func newGate() *gate {
	return &gate{open: make(chan struct{}), token: make(chan struct{}, 1)}
}

func (g *gate) openNow() { g.once.Do(func() { close(g.open) }) }

// enter returns at once when the gate is open (probe false), or when this
// node is the one to wait for the key (probe true): then it must call leave.
func (g *gate) enter(ctx context.Context) (probe bool, err error) {
	select {
	case <-g.open:
		return false, nil
	case g.token <- struct{}{}:
		select {
		case <-g.open:
			<-g.token
			return false, nil
		default:
			return true, nil
		}
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// leave ends a probe: settled opens the gate for every node; otherwise (the
// node was unreachable) the next waiting node probes.
func (g *gate) leave(settled bool) {
	if settled {
		g.openNow()
	}
	<-g.token
}
