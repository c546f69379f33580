// Package fleet runs one command on many nodes at once, over IAP and the
// native SSH client: it gets onto every node through one access.Access (one
// metadata write or OS Login import for the whole run), lets one node at a
// time wait for a new key to propagate, runs the command on up to N nodes
// at a time with stdin broadcast to each, and returns one result per node.
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

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/keys"
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
	// Access gets the user onto the nodes: their plans, the one shared
	// write, the logins with host keys checked.
	Access *access.Access
	// Dial opens a connection to inst's SSH port, through IAP usually; ctx
	// bounds the dial only.
	Dial func(ctx context.Context, inst *gce.Instance) (net.Conn, error)
	// PropagationTimeout bounds the wait for a newly written key.
	PropagationTimeout time.Duration

	Command string
	// Use, when set, replaces Command: it gets the logged-in client (for
	// direct-tcpip probes, say) and its error fails the node.
	Use func(ctx context.Context, inst *gce.Instance, client *ssh.Client) error
	// Stdin, when not nil, opens a node's copy of stdin: once per node, as
	// the node starts; Run closes it when the node is done, read or not.
	Stdin func() io.ReadCloser
	// Parallel is how many nodes run at once (at least 1, at most
	// ParallelLimit).
	Parallel int
	// Timeout bounds each node from dial to exit; 0 means none.
	Timeout time.Duration
	// FailFast starts no new node after the first that is not OK.
	FailFast bool

	// Output returns where a node's stdout and stderr go; nil discards.
	Output func(node string) (stdout, stderr io.Writer)
	// Done hears each result as it comes, from the node's goroutine.
	Done func(Result)
	// Granted hears each grant the run made or relied on, with the
	// number of the run's nodes it lets in: a shared one (project
	// metadata, the OS Login profile) once, a node's own once for that
	// node.
	Granted func(p *access.Plan, g *access.Granted, nodes int)
}

// keyWait is how long a node waits for a key that another node already
// accepted, or that was in metadata before the run: its guest agent may lag
// a little behind the others.
const keyWait = 15 * time.Second

// Run runs cfg.Command on every instance and returns one result each, in
// the order given. It fails as a whole only when the project cannot be
// read or the shared key cannot be written; then no command was run.
func Run(ctx context.Context, cfg Config, insts []*gce.Instance) ([]Result, error) {
	if limit, _ := ParallelLimit(); limit > 0 && cfg.Parallel > limit {
		cfg.Parallel = limit // past it, nodes would fail for want of sockets
	}
	if cfg.Parallel < 1 {
		cfg.Parallel = 1
	}
	if _, err := cfg.Access.Project(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r := &run{cfg: cfg, results: make([]Result, len(insts)), gate: newGate(), cancel: cancel,
		plans: make([]*access.Plan, len(insts)), planErrs: make([]error, len(insts))}
	shared := false
	for i, inst := range insts {
		r.plans[i], r.planErrs[i] = cfg.Access.PlanInstance(ctx, inst)
		if p := r.plans[i]; p != nil && p.Mode == access.MetadataKeys && p.Scope == keys.ScopeProject && p.WriteDue {
			shared = true
		}
	}
	if !shared {
		r.gate.openNow() // nothing new to wait for
	}
	// First contacts are pinned together, meanwhile: in a cold run, while
	// the first node waits for the new key to propagate.
	pinned := make(chan struct{})
	go func() {
		defer close(pinned)
		cfg.Access.PinFirstContacts(ctx, r.plans, cfg.Parallel)
	}()
	defer func() { <-pinned }()
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
				res := r.node(ctx, insts[i], i)
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
	cancel context.CancelCauseFunc // ends the run when the shared key cannot be written

	// plans are the nodes' plans, by index, or why there is none.
	plans    []*access.Plan
	planErrs []error

	// keyErr is the shared write's failure, which ends the run;
	// announced keeps Granted from hearing a shared grant twice.
	keyOnce   sync.Once
	keyErr    error
	announced sync.Map

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

// node runs the command on one instance.
func (r *run) node(parent context.Context, inst *gce.Instance, i int) Result {
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
	status, ran, err := r.exec(ctx, inst, i, stdin)
	res.Duration = time.Since(start)
	res.Status, res.Exit, res.Err = outcome(parent.Err() != nil, ctx.Err() != nil, r.cfg.Timeout, status, ran, err)
	return res
}

// outcome is what exec's return means for a node, given whether the run
// was interrupted and whether the node's own timeout passed by then.
func outcome(interrupted, timedOut bool, timeout time.Duration, status int, ran bool, err error) (Status, int, error) {
	switch {
	case interrupted && err != nil:
		// A command that finished before the interrupt keeps its result.
		if ran {
			return Cancelled, NoExit, errors.New("interrupted while running")
		}
		return Cancelled, NoExit, errors.New("interrupted")
	case timedOut && err != nil:
		if ran {
			return Failed, NoExit, fmt.Errorf("timed out after %v", timeout)
		}
		return Unreachable, NoExit, fmt.Errorf("timed out after %v before the command started", timeout)
	case err != nil && ran:
		return Failed, NoExit, err
	case err != nil:
		return Unreachable, NoExit, err
	case status != 0:
		return Failed, status, nil
	}
	return OK, 0, nil
}

// exec logs in and runs the command. ran says whether the command started,
// so that a failure can be told from an unreachable node.
func (r *run) exec(ctx context.Context, inst *gce.Instance, i int, stdin io.Reader) (status int, ran bool, err error) {
	p := r.plans[i]
	if p == nil {
		return 0, false, r.planErrs[i]
	}
	// The tunnel opens before any key is written, so nodes that IAP
	// refuses leave metadata as it was.
	dial, release, err := sshclient.OpenFirst(ctx, func(ctx context.Context) (net.Conn, error) { return r.cfg.Dial(ctx, inst) })
	if err != nil {
		return 0, false, err
	}
	defer release()
	g, err := r.cfg.Access.Grant(ctx, p)
	if err != nil {
		if g != nil && g.Shared {
			r.keyOnce.Do(func() {
				r.keyErr = err
				r.cancel(err)
				r.gate.openNow()
			})
		}
		return 0, false, err
	}
	r.announce(p, g)
	var client *ssh.Client
	switch {
	case p.Mode == access.OSLogin:
		// The profile's key reaches every OS Login node at once, but each
		// node's guest installs it on its own: each waits.
		client, err = r.cfg.Access.Login(ctx, p, dial, r.cfg.PropagationTimeout)
	case !g.Shared:
		// A node that ignores project keys gets its own line, and waits
		// for it on its own.
		wait := keyWait
		if g.Wrote {
			wait = r.cfg.PropagationTimeout
		}
		client, err = r.cfg.Access.Login(ctx, p, dial, wait)
	default:
		if !g.Wrote {
			r.gate.openNow() // nothing new to wait for
		}
		client, err = r.loginShared(ctx, p, dial)
	}
	if err != nil {
		return 0, false, err
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

// announce tells Granted about g, a shared grant once for the run.
func (r *run) announce(p *access.Plan, g *access.Granted) {
	if r.cfg.Granted == nil {
		return
	}
	if g.Shared {
		// By what it is, not by pointer: a grant relied on without a
		// write is a new value for every plan.
		key := struct {
			mode  access.Mode
			scope string
			wrote bool
		}{g.Mode, g.Scope, g.Wrote}
		if _, seen := r.announced.LoadOrStore(key, true); seen {
			return
		}
	}
	nodes := 1
	if g.Shared {
		nodes = 0
		for _, q := range r.plans {
			if q != nil && q.Mode == p.Mode && (q.Mode == access.OSLogin || q.Scope == p.Scope) {
				nodes++
			}
		}
	}
	r.cfg.Granted(p, g, nodes)
}

// loginShared logs in to a node that reads project keys. After a new
// project key, one node at a time waits for it to propagate; once one has
// taken it the others follow with a short wait, so a run pays one
// propagation wait, not one per node, and does not hammer the relay with
// every node's retries.
func (r *run) loginShared(ctx context.Context, p *access.Plan, dial sshclient.DialFunc) (*ssh.Client, error) {
	probe, err := r.gate.enter(ctx)
	if err != nil {
		return nil, err
	}
	if !probe {
		// A key the probing node refused after the whole wait will not be
		// taken here either: try once rather than wait again.
		wait := keyWait
		if r.gate.refused.Load() {
			wait = 0
		}
		return r.cfg.Access.Login(ctx, p, dial, wait)
	}
	client, err := r.cfg.Access.Login(ctx, p, dial, r.cfg.PropagationTimeout)
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
