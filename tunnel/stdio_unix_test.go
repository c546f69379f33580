//go:build unix

package tunnel_test

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gkessh/gkessh/tunnel"
)

// blockingPipe is a pipe in blocking mode, as ssh gives its ProxyCommand
// (os.Pipe's are non-blocking).
func blockingPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	r, w = os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
	t.Cleanup(func() {
		r.Close()
		w.Close()
	})
	return r, w
}

// TestPipeBlockingStdio runs Pipe on ssh's kind of pipes: it still copies
// both ways, a cancel still interrupts its pending read of stdin, and
// stdin is left in blocking mode for whoever has it next.
func TestPipeBlockingStdio(t *testing.T) {
	r := newRelay(t)
	r.echo(t, 7)
	c := r.dial(t, 7)
	inR, inW := blockingPipe(t)
	outR, outW := blockingPipe(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- tunnel.Pipe(ctx, c, inR, outW) }()

	if _, err := inW.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(outR, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	cancel()
	select {
	case err := <-errc:
		if err != context.Canceled {
			t.Fatalf("Pipe: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		inW.Close() // ends the read, so the test can end
		t.Fatal("Pipe did not return after cancel: its read of a blocking stdin was not interrupted")
	}
	flags, err := unix.FcntlInt(inR.Fd(), unix.F_GETFL, 0)
	if err != nil || flags&unix.O_NONBLOCK != 0 {
		t.Fatalf("stdin flags %#x, %v: left non-blocking", flags, err)
	}
}
