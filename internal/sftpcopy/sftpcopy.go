// Package sftpcopy copies files and directories between this machine and a
// node over SFTP on an SSH connection, as scp does, so that a reader never
// sees a half-written file at its destination name: each file is written
// to a temporary name in the destination's directory and renamed into place
// once complete, on either side.
package sftpcopy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Options say how to copy.
type Options struct {
	// Recursive copies directories with their contents; without it a
	// directory source is an error.
	Recursive bool
	// Preserve keeps each file's mode and its access and modification
	// times, as scp -p does.
	Preserve bool
	// Progress, when set, hears the running totals now and then while
	// bytes move and once at the end (Done). It is called from one
	// goroutine at a time and should return quickly.
	Progress func(Progress)
}

// Result says what one copy did.
type Result struct {
	Files int   // regular files copied
	Bytes int64 // their bytes
	// Skipped names what was left out on purpose, with why: symbolic links
	// to directories, devices, sockets.
	Skipped []string
	// Changed names the remote files that changed while they were pulled:
	// their copies hold what was read (a growing log's first part).
	Changed []string
}

// ChangedError is a local file that changed while it was being pushed, or a
// remote one while it was being pulled: the copy of it is discarded, since
// it would be neither the old nor the new content.
type ChangedError struct {
	Path string // as the caller named it, NODE:PATH for a remote one
}

func (e *ChangedError) Error() string {
	return quote(e.Path) + ": changed while it was being copied (not copied)"
}

// RefusedNameError lists the names a server returned in a directory
// listing that cannot be a file name in the destination (a path, "..",
// control characters): those entries were not copied.
type RefusedNameError struct {
	Node  string
	Dir   string // the remote directory that listed them
	Names []string
}

func (e *RefusedNameError) Error() string {
	q := make([]string, len(e.Names))
	for i, n := range e.Names {
		q[i] = strconv.Quote(n)
	}
	return fmt.Sprintf("%s:%s: refused %d name(s) the server listed that are not plain file names: %s", e.Node, quote(e.Dir), len(e.Names), strings.Join(q, ", "))
}

// Client is an SFTP session on one node. It is not safe for concurrent use.
type Client struct {
	node string
	sess *ssh.Session
	sc   *sftp.Client
	// posixRename: the server replaces an existing file on rename
	// (posix-rename@openssh.com); plain SFTP rename refuses to.
	posixRename bool
	inFlight    int // requests in flight per file
}

// InFlight is how many requests to keep in flight per file when copying
// on nodes nodes at once: maxInFlight shared among them, at least
// minInFlight each.
func InFlight(nodes int) int {
	return max(minInFlight, maxInFlight/max(nodes, 1))
}

// Tuning of pkg/sftp: 32 KiB packets are the size every server accepts
// (draft-ietf-secsh-filexfer-02 guarantees 32 KiB; OpenSSH's sftp-server
// takes up to 256 KiB). A copy to one node keeps maxInFlight requests in
// flight per file, 4 MiB, to keep the tunnel full past the SSH channel's
// 2 MiB window. Measured through the emulator's IAP relay to OpenSSH's
// sshd, 256 MiB, best of 3 interleaved, on the shared 2-core machine (load
// ~17): 64 in flight 69/89 MB/s up/down, 128 88/95, 256 110/97, scp
// through gkessh proxy 74/110; larger packets (64, 128, 255 KiB) were
// slower both ways. Copies to many nodes at once share the machine and
// its memory: for them minInFlight each is as fast and holds a third to a
// half less (docs/performance.md).
const (
	maxPacket     = 32 << 10
	maxInFlight   = 128
	minInFlight   = 16
	sftpSubsystem = "sftp"
)

// Open starts the SFTP subsystem on conn, to keep inFlight requests in
// flight per file (see InFlight). node names the node in errors. ctx
// bounds the start; conn stays the caller's.
func Open(ctx context.Context, conn *ssh.Client, node string, inFlight int) (*Client, error) {
	sess, err := conn.NewSession()
	if err != nil {
		return nil, fmt.Errorf("%s: open session: %w", node, err)
	}
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	c, err := start(sess, node, inFlight)
	if !stop() {
		if err == nil {
			c.Close()
		}
		return nil, ctx.Err()
	}
	if err != nil {
		sess.Close()
		return nil, err
	}
	return c, nil
}

func start(sess *ssh.Session, node string, inFlight int) (*Client, error) {
	// stderr is left unread: sftp-server writes there only when told to
	// log, and a reader would be a goroutine to wait for.
	w, err := sess.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", node, err)
	}
	r, err := sess.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", node, err)
	}
	if err := sess.RequestSubsystem(sftpSubsystem); err != nil {
		return nil, fmt.Errorf("%s: the node's SSH server has no sftp subsystem: %w", node, err)
	}
	sc, err := sftp.NewClientPipe(r, w,
		sftp.MaxPacketChecked(maxPacket),
		sftp.MaxConcurrentRequestsPerFile(inFlight),
		// Concurrent writes may leave holes when one fails; they only
		// ever go to a temporary file that is then removed.
		sftp.UseConcurrentWrites(true),
		sftp.UseFstat(true))
	if err != nil {
		return nil, fmt.Errorf("%s: start sftp: %w", node, err)
	}
	_, posix := sc.HasExtension("posix-rename@openssh.com")
	return &Client{node: node, sess: sess, sc: sc, posixRename: posix, inFlight: inFlight}, nil
}

// Close ends the SFTP session; the SSH connection stays open.
func (c *Client) Close() error {
	err := c.sc.Close()
	c.sess.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: close sftp: %w", c.node, err)
	}
	return nil
}

// abortOn makes ctx ending cut the session, which fails every SFTP call in
// flight; the client is unusable after that. The returned function stops
// watching and says whether ctx cut it.
func (c *Client) abortOn(ctx context.Context) func() error {
	cut := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cut)
		c.sess.Close()
		c.sc.Close()
	})
	return func() error {
		if !stop() {
			<-cut // the cut is over: nothing of it outlives the call
			return ctx.Err()
		}
		return nil
	}
}

// remotePath turns what the user typed after NODE: into an SFTP path:
// relative paths are relative to the login's home directory, which is
// where the server starts, and "~" and "~/" mean that directory as in scp.
func remotePath(p string) string {
	switch {
	case p == "" || p == "~" || p == "~/":
		return "."
	case strings.HasPrefix(p, "~/"):
		return p[2:]
	}
	return p
}

// rerr names node and path in a remote error, keeping its cause for
// errors.Is (fs.ErrNotExist for a missing path).
func (c *Client) rerr(p string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &RemoteError{Node: c.node, Path: p, Err: err}
}

// RemoteError is a failure at a path on the node.
type RemoteError struct {
	Node, Path string
	Err        error
}

func (e *RemoteError) Error() string {
	msg := e.Err.Error()
	switch {
	case errors.Is(e.Err, fs.ErrNotExist):
		msg = "no such file or directory"
	case errors.Is(e.Err, fs.ErrPermission):
		msg = "permission denied"
	}
	return e.Node + ":" + quote(e.Path) + ": " + msg
}

func (e *RemoteError) Unwrap() error { return e.Err }

// plainName reports whether a name a server listed can be a file name in a
// local directory: one path element, not "." or "..", no separators of any
// local system, only graphic characters and spaces, valid UTF-8, local on this
// system (filepath.IsLocal also refuses Windows' reserved names).
func plainName(name string) bool {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		// Not graphic: control and format characters (bidi overrides).
		if !unicode.IsGraphic(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return filepath.IsLocal(name)
}

// quote returns p as it is when it prints plainly, else Go-quoted, so a
// name never moves the cursor or recolours the terminal it is shown on.
func quote(p string) string {
	for _, r := range p {
		if !unicode.IsPrint(r) || r == utf8.RuneError {
			return strconv.Quote(p)
		}
	}
	return p
}

// tempName is the name a file is written under before it is renamed to
// name: hidden, in the same directory so the rename is atomic, and short
// enough for the 255-byte name limits of common file systems.
func tempName(name, suffix string) string {
	const keep = 100
	if len(name) > keep {
		name = strings.ToValidUTF8(name[:keep], "")
	}
	return "." + name + ".gkessh-" + suffix + ".tmp"
}

// stat stats a remote path, following symbolic links; a missing path is
// (nil, nil).
func (c *Client) stat(p string) (os.FileInfo, error) {
	fi, err := c.sc.Stat(p)
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, c.rerr(p, err)
	}
	return fi, nil
}

// joinRemote joins remote path elements as SFTP does (slashes), keeping a
// lone "." readable.
func joinRemote(dir, name string) string {
	if dir == "." {
		return name
	}
	return path.Join(dir, name)
}
