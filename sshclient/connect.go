// Package sshclient logs in to a node over any net.Conn (an IAP tunnel or a
// plain TCP connection), waiting for a freshly written key to reach the
// node, and runs commands and interactive sessions there.
package sshclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// DialFunc opens a new connection to the node's SSH port. Connect calls it
// once per login attempt; ctx bounds the dial only.
type DialFunc func(ctx context.Context) (net.Conn, error)

// Config says how to log in.
type Config struct {
	User string
	// Signers are the keys to offer, usually the one gkessh put into
	// metadata. AuthMethods, when set, replace them.
	Signers     []ssh.Signer
	AuthMethods []ssh.AuthMethod
	// HostKeyCallback verifies the node (see knownhosts.Verifier); it is
	// required. HostKeyAlgorithms, if set, are the host key types to ask
	// for, so the node presents the one that was recorded.
	HostKeyCallback   ssh.HostKeyCallback
	HostKeyAlgorithms []string
	// HostKeyAlias is the host name the callback sees, e.g.
	// compute.1234; Name names the node in messages.
	HostKeyAlias string
	Name         string

	// Wait retries the login while the node refuses the key, for up to
	// Timeout (default 2 minutes): set it when the key was just written
	// to metadata and the guest agent has yet to install it.
	Wait    bool
	Timeout time.Duration
	// HandshakeTimeout bounds each attempt's dial and SSH handshake
	// (default 30 s).
	HandshakeTimeout time.Duration

	// Progress, if not nil, receives "Waiting for SSH key to propagate…"
	// while waiting. Live redraws the elapsed time in place, for a
	// terminal.
	Progress io.Writer
	Live     bool
	// Logf, if not nil, receives one line per failed attempt. It is
	// taken to write to Progress's stream: the waiting line is cleared
	// before each of its lines.
	Logf func(format string, args ...any)
}

// Retry intervals while waiting for propagation: every firstRetryInterval
// for the first fastWait, when a guest agent that watches metadata usually
// installs the key, so that the login follows the install within a tenth
// of a second; then growing, to keep a long wait from hammering the relay.
// maxRetryInterval stays below a second so that the login lands within a
// second of the key.
const (
	firstRetryInterval = 100 * time.Millisecond
	fastWait           = 2 * time.Second
	maxRetryInterval   = 750 * time.Millisecond
	defaultTimeout     = 2 * time.Minute
	defaultHandshake   = 30 * time.Second
)

// Connect logs in. An authentication failure is retried when cfg.Wait is
// set; every other failure (the dial, a host key refused by the callback)
// ends it at once.
func Connect(ctx context.Context, dial DialFunc, cfg Config) (*ssh.Client, error) {
	if cfg.HostKeyCallback == nil {
		return nil, errors.New("sshclient: no HostKeyCallback")
	}
	auth := cfg.AuthMethods
	if len(auth) == 0 {
		if len(cfg.Signers) == 0 {
			return nil, errors.New("sshclient: no key to log in with")
		}
		auth = []ssh.AuthMethod{ssh.PublicKeys(cfg.Signers...)}
	}
	ccfg := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth,
		HostKeyCallback:   cfg.HostKeyCallback,
		HostKeyAlgorithms: cfg.HostKeyAlgorithms,
		ClientVersion:     "SSH-2.0-gkessh",
	}
	// The server's pre-auth banner, shown as OpenSSH shows it: it is
	// often the only place a server says why it refuses.
	var banner strings.Builder
	ccfg.BannerCallback = func(msg string) error {
		banner.Reset()
		banner.WriteString(strings.TrimSpace(msg))
		return nil
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = defaultHandshake
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.Name == "" {
		cfg.Name = cfg.HostKeyAlias
	}
	addr := cfg.HostKeyAlias
	if addr == "" {
		addr = cfg.Name
	}
	addr = net.JoinHostPort(addr, "22")
	start := time.Now()
	waitCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var prog *progress
	interval := firstRetryInterval
	for attempt := 1; ; attempt++ {
		c, err := connectOnce(ctx, dial, addr, ccfg, cfg.HandshakeTimeout)
		if err == nil {
			prog.finish(true)
			return c, nil
		}
		if !cfg.Wait || !IsAuthFailure(err) || !offersPublicKey(err) {
			prog.finish(false)
			if IsAuthFailure(err) {
				return nil, &KeyRefusedError{User: cfg.User, Name: cfg.Name, Keys: keyNames(cfg.Signers), Err: err, Banner: banner.String()}
			}
			return nil, err
		}
		if cfg.Logf != nil {
			// -v lines take the progress line's place, not its tail.
			prog.log(func() {
				cfg.Logf("login attempt %d after %v: key not accepted yet", attempt, time.Since(start).Round(time.Millisecond))
			})
		}
		if prog == nil {
			prog = startProgress(cfg.Progress, cfg.Live, start)
		}
		select {
		case <-waitCtx.Done():
			prog.finish(false)
			if ctx.Err() != nil {
				return nil, &InterruptedError{Name: cfg.Name, Err: ctx.Err()}
			}
			return nil, &KeyRefusedError{User: cfg.User, Name: cfg.Name, Keys: keyNames(cfg.Signers), Waited: cfg.Timeout}
		case <-time.After(interval):
		}
		interval = nextRetry(time.Since(start), interval)
	}
}

// nextRetry is the pause before the next login attempt, after waiting
// for waited with pauses of prev.
func nextRetry(waited, prev time.Duration) time.Duration {
	if waited < fastWait {
		return firstRetryInterval
	}
	return min(prev*3/2, maxRetryInterval)
}

// InterruptedError is the propagation wait cut short, by Ctrl-C or the
// caller's context. Err is the context's error.
type InterruptedError struct {
	Name string
	Err  error
}

func (e *InterruptedError) Error() string {
	return "interrupted while waiting for the SSH key to propagate to " + e.Name
}

func (e *InterruptedError) Unwrap() error { return e.Err }

// KeyRefusedError is the node's sshd refusing every key offered: at once,
// or, when Waited is set, still after waiting that long for a new key to
// propagate.
type KeyRefusedError struct {
	User, Name string
	Keys       string // the offered keys' fingerprints
	Waited     time.Duration
	Err        error  // x/crypto's refusal, when not waiting
	Banner     string // the server's pre-auth banner, if any
}

func (e *KeyRefusedError) Error() string {
	if e.Waited == 0 {
		msg := fmt.Sprintf("%s@%s refused key %s: %v", e.User, e.Name, e.Keys, e.Err)
		if e.Banner != "" {
			// On one line: the server's own lines, kept, could pass for
			// gkessh's (a "gkessh: ..." line of its making).
			msg += "; the server says: " + strings.Join(strings.Fields(strings.ReplaceAll(e.Banner, "\n", " | ")), " ")
		}
		return msg
	}
	// The causes only: what to do about them is the caller's to say.
	return fmt.Sprintf("%s@%s still refuses key %s after %v. Likely causes: the guest agent is not running on the node; "+
		"OS Login is enabled (enable-oslogin=TRUE), so metadata keys are ignored; the instance sets block-project-ssh-keys=TRUE "+
		"and the key went to project metadata; or the node takes longer than that",
		e.User, e.Name, e.Keys, e.Waited)
}

func (e *KeyRefusedError) Unwrap() error { return e.Err }

// connectOnce dials and logs in once, within timeout.
func connectOnce(ctx context.Context, dial DialFunc, addr string, ccfg *ssh.ClientConfig, timeout time.Duration) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	// The handshake takes no context: closing the connection is how ctx
	// interrupts it.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, ccfg)
	if !stop() {
		if err == nil {
			sc.Close()
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, context.Cause(ctx))
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

// IsAuthFailure reports whether err is the server refusing every offered
// key, as opposed to a network or host key failure. x/crypto/ssh has no
// typed error for it, only this message.
func IsAuthFailure(err error) bool {
	return err != nil && strings.Contains(err.Error(), "ssh: unable to authenticate")
}

// offersPublicKey reports whether the server offered public key
// authentication before refusing; when it did not, it takes no key for
// this user at all and waiting for one to propagate cannot help.
// x/crypto/ssh names the attempted methods only in its message.
func offersPublicKey(err error) bool {
	return strings.Contains(err.Error(), "publickey")
}

func keyNames(signers []ssh.Signer) string {
	names := make([]string, len(signers))
	for i, s := range signers {
		names[i] = ssh.FingerprintSHA256(s.PublicKey())
	}
	if len(names) == 0 {
		return "(from AuthMethods)"
	}
	return strings.Join(names, ", ")
}

// progress shows the propagation wait on Progress: a line redrawn every
// 100 ms on a terminal, else one line completed when the wait ends.
type progress struct {
	w     io.Writer
	live  bool
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex // guards writes to w and open
	open  bool       // the waiting line is on screen and unfinished
}

// log runs write, which prints whole lines to the same terminal, with the
// waiting line cleared first: it is redrawn on the next tick (or, without
// a terminal, printed again when the wait ends). A nil p just writes.
func (p *progress) log(write func()) {
	if p == nil || p.w == nil {
		write()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open {
		if p.live {
			fmt.Fprint(p.w, "\r\033[K")
		} else {
			fmt.Fprintln(p.w)
		}
		p.open = false
	}
	write()
}

const waitingMsg = "Waiting for SSH key to propagate…"

func startProgress(w io.Writer, live bool, start time.Time) *progress {
	p := &progress{w: w, live: live, start: start, stop: make(chan struct{})}
	if w == nil {
		return p
	}
	p.open = true
	if !live {
		fmt.Fprint(w, waitingMsg)
		return p
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			p.mu.Lock()
			fmt.Fprintf(w, "\r%s (%.1fs)", waitingMsg, time.Since(start).Seconds())
			p.open = true
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// finish ends the progress line; a nil p (no wait happened) does nothing.
func (p *progress) finish(ok bool) {
	if p == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	if p.w == nil {
		return
	}
	if p.live {
		fmt.Fprintf(p.w, "\r\033[K%s", waitingMsg)
	} else if !p.open {
		fmt.Fprint(p.w, waitingMsg)
	}
	if ok {
		fmt.Fprintf(p.w, " done (%.1fs).\n", time.Since(p.start).Seconds())
	} else {
		fmt.Fprintln(p.w)
	}
}
