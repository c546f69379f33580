package keys

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// DialAgent connects to the user's ssh-agent, as ssh finds it:
// SSH_AUTH_SOCK's socket; on Windows, when SSH_AUTH_SOCK is unset, the
// named pipe of the OpenSSH agent service. ctx bounds the dial.
func DialAgent(ctx context.Context) (net.Conn, error) {
	addr := os.Getenv("SSH_AUTH_SOCK")
	if addr == "" {
		addr = defaultAgent
	}
	if addr == "" {
		return nil, fmt.Errorf("no ssh-agent (SSH_AUTH_SOCK is not set): %s", startAgent)
	}
	conn, err := dialAgent(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("reach ssh-agent at %s (%s): %w", addr, startAgent, err)
	}
	return conn, nil
}

// agentTimeout bounds dialling ssh-agent and listing its keys. A local
// agent answers in milliseconds: the bound only gives up on a wedged one.
const agentTimeout = 5 * time.Second

var errAgentSilent = fmt.Errorf("no answer within %v", agentTimeout)

// AgentKeys connects to the user's ssh-agent (see DialAgent) and lists its
// keys. ctx, and at most 5 s, bound the whole exchange: an agent that
// takes the connection but never answers is given up on. conn stays open
// for signing with the keys; the caller closes it.
func AgentKeys(ctx context.Context) (signers []ssh.Signer, conn net.Conn, err error) {
	ctx, cancel := context.WithTimeoutCause(ctx, agentTimeout, errAgentSilent)
	defer cancel()
	if conn, err = DialAgent(ctx); err != nil {
		return nil, nil, err
	}
	// Closing conn ends a read in flight, on a Windows named pipe too (Go
	// cancels its pending I/O), whose deadlines are not supported.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	signers, err = agent.NewClient(conn).Signers()
	if !stop() {
		err = context.Cause(ctx) // conn was closed under Signers
	}
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("list ssh-agent keys: %w", err)
	}
	return signers, conn, nil
}

// dialUnix dials an agent's Unix socket, which Windows 10 has too.
func dialUnix(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", path)
}
