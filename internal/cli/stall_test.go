//go:build unix

package cli

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/gce"
)

// TestStalledComputeAPI: `gkessh NODE` against a Compute API that accepts
// and never answers fails at the client's bound (shortened here from a
// minute), exit 255, naming the endpoint; it used to hang until killed.
func TestStalledComputeAPI(t *testing.T) {
	t.Parallel()
	e := newEmuEnv(t, emulator.Config{Nodes: 1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	var errb strings.Builder
	stdio := Stdio{In: strings.NewReader(""), Out: &strings.Builder{}, Err: &errb}
	d := e.deps(stdio)
	d.newCompute = func(ctx context.Context, project, endpoint string, ts oauth2.TokenSource) (*gce.Client, error) {
		c, err := gce.New(ctx, project, endpoint, ts)
		if c != nil {
			c.Timeout = 300 * time.Millisecond
		}
		return c, err
	}
	o := sshOptions{globalOptions: e.options(), Node: e.srv.Nodes()[0], Port: 22, PropagationTimeout: time.Minute, Command: []string{"true"}}
	o.ComputeEndpoint = "http://" + ln.Addr().String() + "/compute/v1/"
	start := time.Now()
	err = runSSH(context.Background(), o, d, stdio)
	code := report(stdio.Err, err, true)
	if code != exitFailure || !strings.Contains(errb.String(), "no reply from "+ln.Addr().String()+" within 300ms") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	t.Log(strings.TrimSpace(errb.String()))
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("took %v", took)
	}
}
