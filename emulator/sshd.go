//go:build unix

package emulator

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/gkessh/gkessh/internal/pty"
)

// newSSHD creates the node's SSH server in the configured mode, with its
// host keys (nodeHostKeys), and starts it.
func (s *Server) newSSHD(n *Node) (nodeSSHD, error) {
	keys, err := s.nodeHostKeys(n.Name)
	if err != nil {
		return nil, err
	}
	if s.cfg.SSHD == "openssh" {
		if n.Name != filepath.Base(n.Name) || n.Name == ".." {
			return nil, fmt.Errorf("openssh mode keeps a node's files under its name, and %q is not one directory", n.Name)
		}
		return newOpenSSHD(filepath.Join(s.dir, "nodes", n.Name, "sshd"), keys, s.cfg.Logf)
	}
	d, err := newBuiltinSSHD(keys, s.cfg.Logf)
	if err != nil {
		return nil, err
	}
	d.redirect = n.localAddr
	return d, nil
}

// hostKey is one node host key in the two forms the servers need: the
// private key OpenSSH mode writes to disk and the signer the builtin one uses.
type hostKey struct {
	priv   crypto.Signer
	signer ssh.Signer
}

// newHostKeys generates the Ed25519 and ECDSA P-256 keys a GCE guest agent
// would create on first boot.
func newHostKeys() ([]hostKey, error) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("emulator sshd: generate ed25519 host key: %w", err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("emulator sshd: generate ecdsa host key: %w", err)
	}
	var keys []hostKey
	for _, priv := range []crypto.Signer{ed, ec} {
		signer, err := ssh.NewSignerFromSigner(priv)
		if err != nil {
			return nil, fmt.Errorf("emulator sshd: host key: %w", err)
		}
		keys = append(keys, hostKey{priv: priv, signer: signer})
	}
	return keys, nil
}

func publicKeys(keys []hostKey) []ssh.PublicKey {
	out := make([]ssh.PublicKey, len(keys))
	for i, k := range keys {
		out[i] = k.signer.PublicKey()
	}
	return out
}

// listenLoopback listens on 127.0.0.1:port, falling back to a fresh port
// when port is 0 or taken, so a restarted sshd keeps its address if it can.
func listenLoopback(port int) (net.Listener, error) {
	if port != 0 {
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			return ln, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("emulator sshd: listen: %w", err)
	}
	return ln, nil
}

// builtinSSHD is the default node SSH server, on golang.org/x/crypto/ssh.
// Every session runs as the emulator's OS user, whatever user logs in.
type builtinSSHD struct {
	loopbackServer
	config *ssh.ServerConfig
	logf   func(string, ...any)
	// redirect maps the node's own addresses for direct-tcpip.
	redirect func(host string, port int) (addr string, mapped bool)
	// sftpServer is OpenSSH's sftp-server, which serves the sftp
	// subsystem as on a real node; "" serves it in-process (sftp.go).
	sftpServer string

	life sync.Mutex     // serializes Start, Stop and Close
	wg   sync.WaitGroup // the accept loop and every connection

	// guarded by loopbackServer.mu:
	authorized map[string]map[string]bool // user -> wire-format keys
	conns      map[*batchConn]struct{}
	closed     bool
}

// loopbackServer is what both kinds of node SSH server share: the host
// keys, and the loopback listener, nil while stopped, with the port a
// restart listens on again (set by Start). mu guards ln and the embedding
// server's own state.
type loopbackServer struct {
	keys []ssh.PublicKey

	mu   sync.Mutex
	ln   net.Listener
	port int
}

// Addr implements nodeSSHD.
func (s *loopbackServer) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// HostKeys implements nodeSSHD.
func (s *loopbackServer) HostKeys() []ssh.PublicKey { return s.keys }

func newBuiltinSSHD(keys []hostKey, logf func(string, ...any)) (*builtinSSHD, error) {
	d := &builtinSSHD{loopbackServer: loopbackServer{keys: publicKeys(keys)}, logf: logf, conns: map[*batchConn]struct{}{}, sftpServer: sftpServer()}
	d.config = &ssh.ServerConfig{PublicKeyCallback: d.checkKey, ServerVersion: "SSH-2.0-gce-emulator"}
	for _, k := range keys {
		d.config.AddHostKey(k.signer)
	}
	if err := d.Start(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *builtinSSHD) checkKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	d.mu.Lock()
	ok := d.authorized[meta.User()][string(key.Marshal())]
	d.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("key %s is not authorized for user %s", ssh.FingerprintSHA256(key), meta.User())
	}
	return &ssh.Permissions{}, nil
}

// SetAuthorized implements nodeSSHD.
func (d *builtinSSHD) SetAuthorized(byUser map[string][]ssh.PublicKey) error {
	m := make(map[string]map[string]bool, len(byUser))
	for user, keys := range byUser {
		set := make(map[string]bool, len(keys))
		for _, k := range keys {
			set[string(k.Marshal())] = true
		}
		m[user] = set
	}
	d.mu.Lock()
	d.authorized = m
	d.mu.Unlock()
	return nil
}

// Start implements nodeSSHD.
func (d *builtinSSHD) Start() error {
	d.life.Lock()
	defer d.life.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("emulator sshd: closed")
	}
	if d.ln != nil {
		return nil
	}
	ln, err := listenLoopback(d.port)
	if err != nil {
		return err
	}
	d.ln, d.port = ln, ln.Addr().(*net.TCPAddr).Port
	d.wg.Add(1)
	go d.serve(ln)
	return nil
}

// Stop implements nodeSSHD. It also drops open connections, as a node
// reboot would, so that nothing outlives the server.
func (d *builtinSSHD) Stop() error {
	d.life.Lock()
	defer d.life.Unlock()
	d.mu.Lock()
	if d.ln != nil {
		d.ln.Close()
		d.ln = nil
	}
	for c := range d.conns {
		c.Conn.Close() // at once, without sending what is queued, as a reboot would
	}
	d.mu.Unlock()
	d.wg.Wait()
	return nil
}

// Close implements nodeSSHD.
func (d *builtinSSHD) Close() error {
	err := d.Stop()
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	return err
}

func (d *builtinSSHD) serve(ln net.Listener) {
	defer d.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return // closed by Stop
		}
		if !d.accept(nc, ln) {
			return
		}
	}
}

// accept serves nc unless the server stopped since ln was its listener.
func (d *builtinSSHD) accept(nc net.Conn, ln net.Listener) bool {
	c := newBatchConn(nc)
	d.mu.Lock()
	defer d.mu.Unlock()
	if ln == nil || d.ln != ln {
		c.Close()
		return false
	}
	d.conns[c] = struct{}{}
	d.wg.Add(1)
	go d.handleConn(c)
	return true
}

// pipe connects to the server over a socket pair, which it serves like an
// accepted connection: the relay's way in. The same byte stream as over
// loopback TCP, without the accept and the TCP stack's work on every
// message, which was 5% of the emulator's CPU in a warm 1000-node run.
func (d *builtinSSHD) pipe() (net.Conn, error) {
	// Close-on-exec set under ForkLock, as package net does where
	// SOCK_CLOEXEC is missing (macOS).
	syscall.ForkLock.RLock()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fds[0])
		unix.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, err
	}
	ours, err := fileConn(fds[0])
	if err != nil {
		unix.Close(fds[1])
		return nil, err
	}
	theirs, err := fileConn(fds[1])
	if err != nil {
		ours.Close()
		return nil, err
	}
	d.mu.Lock()
	ln := d.ln
	d.mu.Unlock()
	if !d.accept(theirs, ln) {
		ours.Close()
		return nil, fmt.Errorf("sshd: %w", syscall.ECONNREFUSED)
	}
	return ours, nil
}

// fileConn makes a connection of socket fd, which it takes over.
func fileConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "socketpair")
	defer f.Close() // FileConn holds a duplicate
	return net.FileConn(f)
}

func (d *builtinSSHD) handleConn(c *batchConn) {
	defer d.wg.Done()
	defer func() {
		d.mu.Lock()
		delete(d.conns, c)
		d.mu.Unlock()
		c.Close()
	}()
	// Bound the handshake so a silent client cannot hold a connection.
	c.SetDeadline(time.Now().Add(30 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(c, d.config)
	if err != nil {
		d.logf("sshd %s: %v", c.RemoteAddr(), err)
		return
	}
	c.SetDeadline(time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs first: kills what sessions still run
	wg.Add(1)
	go func() {
		defer wg.Done()
		serveGlobalRequests(ctx, sc, reqs, d.logf)
	}()
	for nc := range chans {
		if nc.ChannelType() == "direct-tcpip" {
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveDirectTCPIP(ctx, nc, d.redirect, d.logf)
			}()
			continue
		}
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only session and direct-tcpip channels are supported")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			d.logf("sshd %s: accept channel: %v", c.RemoteAddr(), err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveSession(ctx, sc.User(), ch, creqs, d.sftpServer, d.logf)
		}()
	}
}

// serveDirectTCPIP carries a "direct-tcpip" channel (ssh -L) to the address
// it names, as sshd does with AllowTcpForwarding: from the node, which here
// is this machine. Each direction's end is passed on as a half-close.
//
// redirect, when set, maps the node's own addresses (its loopback kubelet
// ports, its VPC address) to where the emulator serves them; "" refuses.
func serveDirectTCPIP(ctx context.Context, nc ssh.NewChannel, redirect func(string, int) (string, bool), logf func(string, ...any)) {
	var m struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &m); err != nil {
		nc.Reject(ssh.ConnectionFailed, "bad direct-tcpip request")
		return
	}
	addr := net.JoinHostPort(m.Host, strconv.Itoa(int(m.Port)))
	if redirect != nil {
		if to, mapped := redirect(m.Host, int(m.Port)); mapped && to == "" {
			nc.Reject(ssh.ConnectionFailed, "connect failed: Connection refused")
			return
		} else if mapped {
			addr = to
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	defer conn.Close()
	ch, reqs, err := nc.Accept()
	if err != nil {
		logf("sshd: accept direct-tcpip: %v", err)
		return
	}
	go ssh.DiscardRequests(reqs)
	splice(ctx, ch, conn)
}

// serveGlobalRequests answers a connection's global requests: ssh -R's
// "tcpip-forward" makes the node (this machine) listen, and each
// connection it accepts goes to the client on a "forwarded-tcpip" channel.
// The listeners close with the connection (ctx).
func serveGlobalRequests(ctx context.Context, sc *ssh.ServerConn, reqs <-chan *ssh.Request, logf func(string, ...any)) {
	type forwardAddr struct {
		Addr string
		Port uint32
	}
	var wg sync.WaitGroup
	listeners := map[forwardAddr]net.Listener{}
	defer func() {
		for _, ln := range listeners {
			ln.Close()
		}
		wg.Wait()
	}()
	for req := range reqs {
		var m forwardAddr
		ok := false
		var reply []byte
		switch req.Type {
		case "tcpip-forward":
			if ssh.Unmarshal(req.Payload, &m) != nil {
				break
			}
			ln, err := net.Listen("tcp", net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port))))
			if err != nil {
				logf("sshd: tcpip-forward: %v", err)
				break
			}
			if m.Port == 0 { // RFC 4254 7.1: the reply names the port chosen
				m.Port = uint32(ln.Addr().(*net.TCPAddr).Port)
				reply = ssh.Marshal(struct{ Port uint32 }{m.Port})
			}
			listeners[m] = ln
			ok = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				acceptForwarded(ctx, sc, ln, m.Addr, m.Port)
			}()
		case "cancel-tcpip-forward":
			if ssh.Unmarshal(req.Payload, &m) == nil && listeners[m] != nil {
				listeners[m].Close()
				delete(listeners, m)
				ok = true
			}
		}
		if req.WantReply {
			req.Reply(ok, reply)
		}
	}
}

// acceptForwarded hands each connection ln accepts to the client on a
// "forwarded-tcpip" channel, until ln closes.
func acceptForwarded(ctx context.Context, sc *ssh.ServerConn, ln net.Listener, addr string, port uint32) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			from := conn.RemoteAddr().(*net.TCPAddr)
			ch, reqs, err := sc.OpenChannel("forwarded-tcpip", ssh.Marshal(struct {
				Addr     string
				Port     uint32
				OrigAddr string
				OrigPort uint32
			}{addr, port, from.IP.String(), uint32(from.Port)}))
			if err != nil {
				return
			}
			go ssh.DiscardRequests(reqs)
			splice(ctx, ch, conn)
		}()
	}
}

// splice copies between a forwarding channel and its TCP connection until
// both directions are done, passing each end on as a half-close. ctx
// ending (the SSH connection gone) closes conn.
func splice(ctx context.Context, ch ssh.Channel, conn net.Conn) {
	defer ch.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyPooled(conn, ch)
		conn.(*net.TCPConn).CloseWrite()
	}()
	copyPooled(ch, conn)
	ch.CloseWrite()
	<-done
}

// copyBufs are the buffers of copyPooled: a node runs a process or two per
// connection, and each would otherwise allocate a 32 KiB buffer per stream.
var copyBufs = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// copyPooled is io.Copy with a buffer from copyBufs. Both ends are wrapped
// so that neither's ReadFrom or WriteTo (os.File's, net.TCPConn's, which
// fall back to io.Copy's own buffer for a channel) takes over.
func copyPooled(dst io.Writer, src io.Reader) (int64, error) {
	buf := copyBufs.Get().(*[32 << 10]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf[:])
}

// session is one "session" channel: an optional PTY and at most one process.
type session struct {
	user string
	ch   ssh.Channel
	logf func(string, ...any)
	env  []string

	// Set by pty-req. tty is the terminal end the process gets; master
	// is read and written by the session's copy goroutines.
	master, tty *os.File
	proc        *nodeProcess

	sftpServer string // as builtinSSHD's
	sftp       bool   // serving the sftp subsystem in-process
}

// Request payloads, RFC 4254 section 6.
type (
	envRequest  struct{ Name, Value string }
	execRequest struct{ Command string }
	ptyRequest  struct {
		Term                      string
		Cols, Rows, Width, Height uint32
		Modes                     string
	}
	windowChange struct{ Cols, Rows, Width, Height uint32 }
	signalMsg    struct{ Signal string }
	exitStatus   struct{ Status uint32 }
	exitSignal   struct {
		Signal     string
		CoreDumped bool
		Msg, Lang  string
	}
)

// serveSession answers the channel's requests until the client closes it.
// The process, once started, is waited for by a goroutine that sends its
// exit status and closes the channel.
func serveSession(ctx context.Context, user string, ch ssh.Channel, reqs <-chan *ssh.Request, sftpServer string, logf func(string, ...any)) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	s := &session{user: user, ch: ch, logf: logf, sftpServer: sftpServer}
	defer func() {
		cancel() // the client is gone: kill what still runs
		wg.Wait()
		ch.Close()
		s.closePTY()
	}()
	for req := range reqs {
		ok := false
		var stream func()
		switch req.Type {
		case "env":
			var m envRequest
			if ssh.Unmarshal(req.Payload, &m) == nil {
				s.env = append(s.env, m.Name+"="+m.Value)
				ok = true
			}
		case "pty-req":
			var m ptyRequest
			if ssh.Unmarshal(req.Payload, &m) == nil && s.master == nil && s.proc == nil {
				ok = s.openPTY(m.Term, m.Rows, m.Cols)
			}
		case "window-change":
			var m windowChange
			if ssh.Unmarshal(req.Payload, &m) == nil && s.master != nil {
				ok = pty.SetSize(s.master, int(m.Rows), int(m.Cols)) == nil
			}
		case "signal":
			var m signalMsg
			if ssh.Unmarshal(req.Payload, &m) == nil && s.proc != nil {
				if sig := unix.SignalNum("SIG" + m.Signal); sig != 0 {
					ok = s.proc.signal(sig) == nil
				}
			}
		case "exec", "shell", "subsystem":
			if s.proc == nil && !s.sftp {
				if s.inProcessSFTP(req) {
					stream = s.startSFTP(ctx, &wg)
				} else {
					stream = s.start(ctx, req, &wg)
				}
				ok = stream != nil
				// A failed start ends the session as sshd does; the reply
				// below still goes out first.
			}
		}
		if req.WantReply {
			req.Reply(ok, nil)
		}
		if stream != nil {
			// Only now: a quick process would otherwise close the channel
			// before the client has its reply, and the client sees EOF.
			stream()
		}
		if !ok && s.proc == nil && !s.sftp && (req.Type == "exec" || req.Type == "shell" || req.Type == "subsystem") {
			return
		}
	}
}

func (s *session) openPTY(term string, rows, cols uint32) bool {
	master, tty, err := pty.Open()
	if err != nil {
		s.logf("sshd: %v", err)
		return false
	}
	s.master, s.tty = master, tty
	s.env = append(s.env, "TERM="+term)
	if err := pty.SetSize(master, int(rows), int(cols)); err != nil {
		s.logf("sshd: %v", err)
	}
	return true
}

func (s *session) closePTY() {
	if s.master != nil {
		s.master.Close()
	}
	if s.tty != nil {
		s.tty.Close()
	}
}

// command builds the process for an exec, shell or subsystem request, the
// way sshd does: the login shell runs commands with -c, and a shell request
// starts it as a login shell.
func (s *session) command(req *ssh.Request) (procSpec, error) {
	shell := os.Getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
	name, args := shell, []string{shell}
	switch req.Type {
	case "exec":
		var m execRequest
		if err := ssh.Unmarshal(req.Payload, &m); err != nil {
			return procSpec{}, fmt.Errorf("bad exec request: %w", err)
		}
		args = append(args, "-c", m.Command)
	case "shell":
		args[0] = "-" + filepath.Base(shell)
	case "subsystem":
		var m execRequest
		if err := ssh.Unmarshal(req.Payload, &m); err != nil {
			return procSpec{}, fmt.Errorf("bad subsystem request: %w", err)
		}
		if m.Command != "sftp" || s.sftpServer == "" {
			return procSpec{}, fmt.Errorf("subsystem %q is not available", m.Command)
		}
		name, args = s.sftpServer, []string{s.sftpServer}
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return procSpec{}, err
	}
	spec := procSpec{Path: path, Args: args, Env: append(loginEnv(shell), s.env...)}
	if home, err := os.UserHomeDir(); err == nil {
		spec.Dir = home
	}
	return spec, nil
}

// loginEnv is the environment sshd gives a session, for the emulator's OS
// user: not the emulator's own, which a real node would not share. PATH is
// kept, so that programs installed off the standard path still run.
func loginEnv(shell string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	env := []string{"SHELL=" + shell, "PATH=" + path}
	if u, err := user.Current(); err == nil {
		env = append(env, "USER="+u.Username, "LOGNAME="+u.Username, "HOME="+u.HomeDir)
	}
	return env
}

// sftpServer finds OpenSSH's sftp-server, which serves the sftp subsystem
// (and so scp and rsync-over-sftp) when OpenSSH is installed.
func sftpServer() string {
	for _, p := range []string{"/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/lib/ssh/sftp-server", "/usr/libexec/sftp-server"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// waitDelay is how long a session still reads a process's output once
// the process is gone: a background child may hold it open.
const waitDelay = 2 * time.Second

// start starts the process. It returns the function that starts the
// goroutines streaming its I/O and reporting its exit, or nil if the
// request failed.
func (s *session) start(ctx context.Context, req *ssh.Request, wg *sync.WaitGroup) func() {
	spec, err := s.command(req)
	if err != nil {
		s.logf("sshd: %v", err)
		return nil
	}
	if s.tty != nil {
		spec.TTY = true
		p, err := startProcess(spec, []*os.File{s.tty})
		if err != nil {
			s.logf("sshd: start %s: %v", spec.Path, err)
			return nil
		}
		// Only the child holds the terminal end now, so the master reads
		// EIO once the child and its descendants are gone.
		s.tty.Close()
		s.tty = nil
		s.proc = p
		return func() {
			wg.Add(2)
			go func() {
				defer wg.Done()
				copyPooled(s.master, s.ch)
			}()
			go func() {
				defer wg.Done()
				s.waitPTY(ctx)
			}()
		}
	}
	pipes, err := newStdio()
	if err != nil {
		s.logf("sshd: %v", err)
		return nil
	}
	p, err := startProcess(spec, pipes.child())
	pipes.closeChild()
	if err != nil {
		pipes.close()
		s.logf("sshd: start %s: %v", spec.Path, err)
		return nil
	}
	s.proc = p
	return func() {
		wg.Add(2)
		go func() {
			defer wg.Done()
			copyPooled(pipes.stdin, s.ch)
			pipes.stdin.Close() // EOF from the client
		}()
		go func() {
			defer wg.Done()
			var out sync.WaitGroup
			out.Go(func() { copyPooled(s.ch, pipes.stdout) })
			out.Go(func() { copyPooled(s.ch.Stderr(), pipes.stderr) })
			s.wait(ctx)
			pipes.stdin.Close()
			deadline := time.Now().Add(waitDelay)
			pipes.stdout.SetReadDeadline(deadline)
			pipes.stderr.SetReadDeadline(deadline)
			out.Wait()
			pipes.close()
			s.finish()
		}()
	}
}

// stdio is a process's three pipes: the session's ends and the child's.
type stdio struct {
	stdin, stdout, stderr                *os.File // the session's ends
	childStdin, childStdout, childStderr *os.File
}

func newStdio() (*stdio, error) {
	var p stdio
	var err error
	if p.childStdin, p.stdin, err = os.Pipe(); err != nil {
		return nil, err
	}
	if p.stdout, p.childStdout, err = os.Pipe(); err != nil {
		p.closeChild()
		p.close()
		return nil, err
	}
	if p.stderr, p.childStderr, err = os.Pipe(); err != nil {
		p.closeChild()
		p.close()
		return nil, err
	}
	return &p, nil
}

func (p *stdio) child() []*os.File { return []*os.File{p.childStdin, p.childStdout, p.childStderr} }

func (p *stdio) closeChild() { closeAll(p.childStdin, p.childStdout, p.childStderr) }

func (p *stdio) close() { closeAll(p.stdin, p.stdout, p.stderr) }

func closeAll(files ...*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// wait returns once the process is gone; the client going away first
// kills its process group.
func (s *session) wait(ctx context.Context) {
	select {
	case <-s.proc.exited:
	case <-ctx.Done():
		s.proc.signal(unix.SIGKILL)
		<-s.proc.exited
	}
}

// waitPTY copies the terminal's output to the client until the process is
// gone, then finishes the session.
func (s *session) waitPTY(ctx context.Context) {
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		copyPooled(s.ch, s.master) // ends with EIO when the last holder exits
	}()
	s.wait(ctx)
	// A background job may keep the terminal open; stop reading shortly
	// after the process is gone.
	s.master.SetReadDeadline(time.Now().Add(time.Second))
	<-copied
	s.finish()
}

// finish sends the exit status, or the signal that killed the process, and
// closes the channel.
func (s *session) finish() {
	if err := s.proc.err; err != nil {
		s.logf("sshd: %v", err)
		s.ch.Close()
		return
	}
	if ws := s.proc.status; ws.Signaled() {
		name := strings.TrimPrefix(unix.SignalName(ws.Signal()), "SIG")
		s.ch.SendRequest("exit-signal", false, ssh.Marshal(exitSignal{Signal: name, CoreDumped: ws.CoreDump()}))
	} else {
		s.ch.SendRequest("exit-status", false, ssh.Marshal(exitStatus{Status: uint32(ws.ExitStatus())}))
	}
	s.ch.CloseWrite()
	s.ch.Close()
}
