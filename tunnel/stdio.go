package tunnel

import (
	"context"
	"net"
	"os"

	"github.com/gkessh/gkessh/internal/pollio"
)

// Pipe carries a process's stdio (in, out) through the tunnel connection c
// until both directions are done: the ProxyCommand mode of `gkessh proxy`,
// the way nc runs under ssh. See join for how each end is closed; Pipe
// also ends once nobody reads out any more (ssh exited).
//
// ssh hands its ProxyCommand blocking pipes. Where the OS allows, Pipe
// reads and writes non-blocking duplicates of them instead, restored when
// it returns, so that waiting parks a goroutine rather than a thread and
// cancelling ctx interrupts a pending read; on Linux it also enlarges the
// pipe from ssh. Terminals and regular files are used as they are.
//
// Cancelling ctx closes c. Pipe returns the tunnel's error, else the local
// side's, else nil; ctx.Err() if cancelled.
func Pipe(ctx context.Context, c net.Conn, in, out *os.File) error {
	return pipe(ctx, c, in, out, nil)
}

// SSHSession is what PipeSSH saw of an SSH client's session.
type SSHSession struct {
	// KexIncomplete: the client's stream ended during key exchange,
	// before the client sent SSH_MSG_NEWKEYS, which it sends only once it
	// has accepted the host key: ssh refusing a changed host key, among
	// other reasons.
	KexIncomplete bool
	// Received is how many bytes the server sent after the client's
	// SSH_MSG_NEWKEYS, all encrypted. A session refused at
	// authentication gets a few hundred (the service accept and a failure
	// per method tried); one that logs in gets more (its success, OpenSSH's
	// host keys announcement, the channel's messages).
	Received int64
}

// PipeSSH is Pipe for an SSH client's stdio, reporting what it saw of the
// session. Watching costs nothing once NEWKEYS has passed but a count of
// the bytes sent to the client.
func PipeSSH(ctx context.Context, c net.Conn, in, out *os.File) (SSHSession, error) {
	var watch kexWatch
	err := pipe(ctx, c, in, out, &watch)
	return SSHSession{KexIncomplete: watch.kexIncomplete(), Received: watch.received()}, err
}

func pipe(ctx context.Context, c net.Conn, in, out *os.File, watch *kexWatch) error {
	if twin, restore := pollio.Pollable(in, pipeSize); twin != nil {
		defer restore()
		in = twin
	}
	if twin, restore := pollio.Pollable(out, 0); twin != nil {
		defer restore()
		out = twin
	}
	return join(ctx, c, in, out, watch)
}

// pipeSize is the buffer asked for on the pipe from ssh, Linux's default
// limit for unprivileged processes: fewer, larger reads of what ssh sends.
// The pipe to ssh keeps the default 64 KiB: with a bigger one ssh falls
// behind at the start of a download, uses more CPU, and downloads are
// slower.
const pipeSize = 1 << 20
