package sshclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/term"

	"github.com/gkessh/gkessh/internal/shellquote"
)

// Session describes one remote command or shell.
type Session struct {
	// Command runs through the remote user's shell; "" starts an
	// interactive login shell. See CommandLine.
	Command string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer

	// PTY requests a terminal for the remote side. Term is its type
	// (default xterm), Rows and Cols its size (default 24x80).
	PTY        bool
	Term       string
	Rows, Cols int
	// Terminal, if set with PTY and a terminal, is switched to raw mode
	// for the session (restored on every way out) and its size is
	// followed (see watchSize).
	Terminal *os.File
	// Env is sent with "env" requests; servers drop what their
	// AcceptEnv does not list.
	Env map[string]string
	// ForwardAgent, if set, is offered to the remote side as
	// SSH_AUTH_SOCK (ssh -A). Only do this for nodes you trust: their
	// root can use the agent's keys while you are logged in.
	ForwardAgent agent.Agent
	// Warn receives non-fatal problems, such as a refused agent
	// forwarding; nil discards them.
	Warn io.Writer
	// AliveInterval, when positive, sends a keepalive@openssh.com request
	// after each such interval, as OpenSSH's ServerAliveInterval does;
	// after AliveCountMax (default 3) unanswered ones the session ends
	// with ErrNotAlive. The tunnel below may not notice a dead path.
	AliveInterval time.Duration
	AliveCountMax int
}

// ErrNotAlive ends a session whose server stopped answering keepalives.
var ErrNotAlive = errors.New("the node stopped answering keepalives: the connection is dead")

// NoStatus is what Run returns when the command reported no exit status.
const NoStatus = -1

// Run runs the session and returns the remote exit status, 128+N when a
// signal N killed the command. A failure of its own, such as a lost
// connection, returns NoStatus and an error. Canceling ctx closes the
// session.
//
// Stdin is read by a goroutine that stays blocked in Read if the remote side
// ends first and Stdin never returns; for os.Stdin that lasts until the
// process exits, as with any ssh client.
func Run(ctx context.Context, client *ssh.Client, s Session) (int, error) {
	sess, err := client.NewSession()
	if err != nil {
		return NoStatus, fmt.Errorf("open session: %w", err)
	}
	defer sess.Close()
	for k, v := range s.Env {
		sess.Setenv(k, v) // refused variables are not an error, as in ssh
	}
	if s.ForwardAgent != nil {
		// One handler serves every agent channel of the connection: this
		// fails only when an earlier session registered it already.
		agent.ForwardToAgent(client, s.ForwardAgent)
		if err := agent.RequestAgentForwarding(sess); err != nil && s.Warn != nil {
			fmt.Fprintf(s.Warn, "gkessh: the node refused agent forwarding: %v\n", err)
		}
	}
	sess.Stdin, sess.Stdout, sess.Stderr = pooledReader(s.Stdin), pooledWriter(s.Stdout), pooledWriter(s.Stderr)
	if s.PTY {
		restore, raw, err := s.setupPTY(sess)
		if err != nil {
			return NoStatus, err
		}
		defer restore()
		if raw && s.Stdin == io.Reader(s.Terminal) {
			sess.Stdin = pooledReader(consoleInput(s.Terminal))
		}
	}
	if s.Command == "" {
		err = sess.Shell()
	} else {
		err = sess.Start(s.Command)
	}
	if err != nil {
		return NoStatus, fmt.Errorf("start remote command: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	dead := keepAlive(client, s.AliveInterval, s.AliveCountMax)
	err = sess.Wait()
	if dead() {
		return NoStatus, ErrNotAlive
	}
	if !stop() {
		return NoStatus, fmt.Errorf("session ended: %w", context.Cause(ctx))
	}
	return ExitStatus(err)
}

// copyBuffers are what a session's streams are copied through.
// x/crypto/ssh copies stdin, stdout and stderr each with io.Copy, a fresh
// 32 KiB buffer apiece (stdin twice, through a pipe): for a fleet of short
// commands that was most of what a node allocated. Handing io.Copy a
// WriterTo or ReaderFrom that copies through a pooled buffer avoids all
// but the copy from the pipe to the channel.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// pooledCopy copies r to w through a pooled buffer, as io.Copy does, with
// neither side's ReaderFrom or WriterTo (which could be the caller's).
func pooledCopy(w io.Writer, r io.Reader) (int64, error) {
	b := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(b)
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{r}, *b)
}

type pooledReaderTo struct{ io.Reader }

func (r pooledReaderTo) WriteTo(w io.Writer) (int64, error) { return pooledCopy(w, r.Reader) }

type pooledWriterFrom struct{ io.Writer }

func (w pooledWriterFrom) ReadFrom(r io.Reader) (int64, error) { return pooledCopy(w.Writer, r) }

// pooledReader is r copied out through a pooled buffer; nil stays nil (no
// stdin).
func pooledReader(r io.Reader) io.Reader {
	if r == nil {
		return nil
	}
	return pooledReaderTo{r}
}

// pooledWriter is w copied into through a pooled buffer; nil stays nil
// (discarded).
func pooledWriter(w io.Writer) io.Writer {
	if w == nil {
		return nil
	}
	return pooledWriterFrom{w}
}

// keepAlive probes the server every interval (none when interval <= 0) and
// closes the client once countMax probes in a row went unanswered. The
// returned function stops it and reports whether it closed the client. A
// probe stuck on a dead server returns when the client closes.
func keepAlive(client *ssh.Client, interval time.Duration, countMax int) (stop func() bool) {
	if interval <= 0 {
		return func() bool { return false }
	}
	if countMax <= 0 {
		countMax = 3
	}
	done, finished := make(chan struct{}), make(chan struct{})
	var dead bool
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		answered := make(chan struct{}, 1)
		inFlight, missed := false, 0
		for {
			select {
			case <-done:
				return
			case <-answered:
				inFlight, missed = false, 0
			case <-t.C:
				if inFlight {
					if missed++; missed >= countMax {
						dead = true
						client.Close()
						return
					}
					continue
				}
				inFlight = true
				go func() {
					// Any reply, even a refusal, shows the server is there.
					if _, _, err := client.SendRequest("keepalive@openssh.com", true, nil); err == nil {
						answered <- struct{}{}
					}
				}()
			}
		}
	}()
	return func() bool {
		close(done)
		<-finished
		return dead
	}
}

// ExitStatus maps what ssh.Session.Wait returned to an exit status and,
// for gkessh's own failures, an error.
func ExitStatus(err error) (int, error) {
	var ee *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.ExitStatus(), nil
	case errors.As(err, &missing):
		return NoStatus, errors.New("the remote command ended without an exit status (connection lost?)")
	}
	return NoStatus, fmt.Errorf("session: %w", err)
}

// setupPTY requests the remote terminal and, for a local terminal, enters
// raw mode (raw), turns on escape-sequence processing where the console
// needs it (Windows), and forwards window size changes. restore undoes all
// of it. The size is read from Stdout when it is the terminal, else from
// consoleOutput: on Windows only an output handle has the window's size
// and takes escape sequences, so a redirected Stdout leaves CONOUT$.
func (s Session) setupPTY(sess *ssh.Session) (restore func(), raw bool, err error) {
	rows, cols := s.Rows, s.Cols
	in, out, closeOut := -1, -1, func() {}
	if s.Terminal != nil && term.IsTerminal(int(s.Terminal.Fd())) {
		in = int(s.Terminal.Fd())
		if f, ok := s.Stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			out = int(f.Fd())
		} else {
			out, closeOut = consoleOutput(in)
		}
		if w, h, err := term.GetSize(out); err == nil {
			rows, cols = h, w
		}
	}
	if rows <= 0 || cols <= 0 {
		rows, cols = 24, 80
	}
	termType := s.Term
	if termType == "" {
		termType = "xterm"
	}
	modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
	if err := sess.RequestPty(termType, rows, cols, modes); err != nil {
		closeOut()
		return nil, false, fmt.Errorf("request a terminal: %w", err)
	}
	if in < 0 {
		return func() {}, false, nil
	}
	restoreVT, err := enableVT(out)
	if err != nil {
		closeOut()
		return nil, false, fmt.Errorf("turn on the terminal's escape sequences: %w", err)
	}
	// Raw mode also passes Ctrl-C on as a byte, for the remote side to
	// act on, as ssh does.
	state, err := term.MakeRaw(in)
	if err != nil {
		restoreVT()
		closeOut()
		return nil, false, fmt.Errorf("put the terminal in raw mode: %w", err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchSize(done, out, cols, rows, func(w, h int) { sess.WindowChange(h, w) })
	}()
	return func() {
		close(done)
		wg.Wait()
		term.Restore(in, state)
		restoreVT()
		closeOut()
	}, true, nil
}

// CommandLine turns the words after "--" into the command string SSH
// carries. One word is sent as is, so it may hold shell syntax
// ("ls *.log | wc -l"); several words are each quoted for the remote
// shell, so that they arrive as the same argv ("sh -c 'exit 7'" exits 7).
// Plain ssh instead joins the words with spaces and lets the remote shell
// split them again.
func CommandLine(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return shellquote.Join(args...)
}
