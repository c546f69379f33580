package keys

import (
	"context"
	"fmt"
	"net"
	"os"
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

// dialUnix dials an agent's Unix socket, which Windows 10 has too.
func dialUnix(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", path)
}
