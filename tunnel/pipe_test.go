//go:build unix

package tunnel_test

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gkessh/gkessh/tunnel"
)

// pipeRun is tunnel.Pipe between a tunnel and two os.Pipes, as the proxy
// runs it between a tunnel and ssh.
type pipeRun struct {
	in   *os.File // what the local side writes
	out  *os.File // what the local side reads
	errc chan error
}

func startPipe(t *testing.T, ctx context.Context, c net.Conn) *pipeRun {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeRun{in: inW, out: outR, errc: make(chan error, 1)}
	go func() {
		defer inR.Close()
		p.errc <- tunnel.Pipe(ctx, c, inR, outW)
	}()
	t.Cleanup(func() {
		inW.Close()
		outR.Close()
	})
	return p
}

func (p *pipeRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.errc:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Pipe did not return")
		return nil
	}
}

func TestPipe(t *testing.T) {
	r := newRelay(t)
	r.echo(t, 7)
	late := make(chan struct{})
	r.serve(t, 8, func(c net.Conn) {
		defer c.Close()
		<-late
		c.Write([]byte("late"))
	})

	t.Run("local reader goes away", func(t *testing.T) {
		c := r.dial(t, 7)
		p := startPipe(t, context.Background(), c)
		if _, err := p.in.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2)
		if _, err := io.ReadFull(p.out, buf); err != nil || string(buf) != "hi" {
			t.Fatalf("echo %q, %v", buf, err)
		}
		// Like ssh exiting without a signal to its ProxyCommand: the echo
		// server never closes, and stdin stays open.
		p.out.Close()
		if err := p.wait(t); err != nil {
			t.Fatalf("Pipe: %v, want nil", err)
		}
	})
	t.Run("local EOF, then the node's last words", func(t *testing.T) {
		c := r.dial(t, 8)
		p := startPipe(t, context.Background(), c)
		p.in.Close()
		close(late)
		got, err := io.ReadAll(p.out)
		if err != nil || string(got) != "late" {
			t.Fatalf("read %q, %v; want late, then EOF", got, err)
		}
		if err := p.wait(t); err != nil {
			t.Fatalf("Pipe: %v, want nil", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		c := r.dial(t, 7)
		ctx, cancel := context.WithCancel(context.Background())
		p := startPipe(t, ctx, c)
		cancel()
		if err := p.wait(t); err != context.Canceled {
			t.Fatalf("Pipe: %v, want context.Canceled", err)
		}
	})
}
