//go:build !windows

package keys

import (
	"context"
	"net"
)

// defaultAgent is where the agent is without SSH_AUTH_SOCK: nowhere.
const defaultAgent = ""

// startAgent is the hint for a missing or unreachable agent.
const startAgent = "start one with eval $(ssh-agent), then ssh-add"

func dialAgent(ctx context.Context, addr string) (net.Conn, error) {
	return dialUnix(ctx, addr)
}
