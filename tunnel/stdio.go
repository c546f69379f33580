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

// PipeSSH is Pipe for an SSH client's stdio. It also reports whether the
// client's stream ended during key exchange, before the client sent
// SSH_MSG_NEWKEYS, which it sends only once it has accepted the host key:
// ssh refusing a changed host key, among other reasons. Watching costs
// nothing once NEWKEYS has passed.
func PipeSSH(ctx context.Context, c net.Conn, in, out *os.File) (kexIncomplete bool, err error) {
	var watch kexWatch
	err = pipe(ctx, c, in, out, &watch)
	return watch.kexIncomplete(), err
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
