package keys

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/windows"
)

// defaultAgent is the named pipe of Windows OpenSSH's ssh-agent service,
// which ssh.exe uses when SSH_AUTH_SOCK is unset.
const defaultAgent = `\\.\pipe\openssh-ssh-agent`

// startAgent is the hint for a missing or unreachable agent.
const startAgent = "start the OpenSSH Authentication Agent service: Start-Service ssh-agent, then ssh-add"

// dialAgent opens addr: a named pipe, or else a Unix socket. A pipe whose
// instances are all busy is tried again until ctx ends.
func dialAgent(ctx context.Context, addr string) (net.Conn, error) {
	if !strings.HasPrefix(addr, `\\.\pipe\`) {
		return dialUnix(ctx, addr)
	}
	for {
		f, err := os.OpenFile(addr, os.O_RDWR, 0)
		if err == nil {
			return pipeConn{f}, nil
		}
		if !errors.Is(err, windows.ERROR_PIPE_BUSY) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// pipeConn is a named pipe client as a net.Conn. Deadlines fail with
// os.ErrNoDeadline: the handle is opened for synchronous I/O.
type pipeConn struct{ *os.File }

var _ net.Conn = pipeConn{}

func (c pipeConn) LocalAddr() net.Addr  { return pipeAddr(c.Name()) }
func (c pipeConn) RemoteAddr() net.Addr { return pipeAddr(c.Name()) }

// pipeAddr is a named pipe's path.
type pipeAddr string

func (pipeAddr) Network() string  { return "pipe" }
func (a pipeAddr) String() string { return string(a) }
