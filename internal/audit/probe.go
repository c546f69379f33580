package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/gce"
)

// Probe is what audit saw from inside one node, over its SSH connection.
// Every probe is a read: a TCP connection the node's sshd opens
// (direct-tcpip) and, for the kubelet, GET requests.
type Probe struct {
	// ReadOnlyPort: 127.0.0.1:10255 answered GET /healthz.
	ReadOnlyPort bool `json:"readOnlyPort"`
	// Requests are the read-only port's requests by path since the
	// kubelet started, audit's own taken out.
	Requests map[string]int64 `json:"requests,omitempty"`
	// SSHD is the banner sshd sends on the node's VPC address, port 22;
	// "" when nothing answered there.
	SSHD string `json:"sshd,omitempty"`
}

// ProbeNode runs the live checks on inst through client.
func ProbeNode(ctx context.Context, client *ssh.Client, inst *gce.Instance) (*Probe, error) {
	p := &Probe{}
	dial := func(ctx context.Context, _, addr string) (net.Conn, error) {
		return client.DialContext(ctx, "tcp", addr)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	defer hc.CloseIdleConnections()
	get := func(path string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:10255"+path, nil)
		if err != nil {
			return "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return string(b), err
	}
	if _, err := get("/healthz"); err == nil {
		p.ReadOnlyPort = true
		metrics, err := get("/metrics")
		if err != nil {
			return nil, fmt.Errorf("audit: %s: read-only port answered /healthz but not /metrics: %w", inst.Name, err)
		}
		p.Requests = ReadOnlyRequests(metrics)
		// The kubelet counts a request before serving it, so the scrape
		// counts itself.
		for _, own := range []string{"healthz", "metrics"} {
			if p.Requests[own]--; p.Requests[own] <= 0 {
				delete(p.Requests, own)
			}
		}
	} else if !refused(err) && ctx.Err() == nil {
		return nil, fmt.Errorf("audit: %s: kubelet read-only port: %w", inst.Name, err)
	}
	if len(inst.NetworkInterfaces) > 0 && inst.NetworkInterfaces[0].NetworkIP != "" {
		p.SSHD = banner(ctx, client, net.JoinHostPort(inst.NetworkInterfaces[0].NetworkIP, strconv.Itoa(22)))
	}
	return p, ctx.Err()
}

// refused reports whether the node's sshd could not open the connection:
// nothing listens there.
func refused(err error) bool {
	var oc *ssh.OpenChannelError
	return errors.As(err, &oc)
}

// banner reads the first line a server at addr sends, through the node;
// "" when nothing answers. SSH channels have no deadlines, so ctx ends the
// read by closing the channel.
func banner(ctx context.Context, client *ssh.Client, addr string) string {
	conn, err := client.DialContext(ctx, "tcp", addr)
	if err != nil {
		return ""
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	line, err := bufio.NewReader(io.LimitReader(conn, 256)).ReadString('\n')
	if err != nil && line == "" {
		return ""
	}
	return strings.TrimSpace(line)
}
