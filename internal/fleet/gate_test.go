package fleet

import (
	"context"
	"errors"
	"testing"
	"time"
)

// enterAsync enters g from a goroutine and delivers the outcome.
func enterAsync(ctx context.Context, g *gate) <-chan error {
	out := make(chan error, 1)
	go func() {
		probe, err := g.enter(ctx)
		switch {
		case err != nil:
			out <- err
		case probe:
			out <- errProbe
		default:
			out <- nil
		}
	}()
	return out
}

var errProbe = errors.New("probe")

func recv(t *testing.T, c <-chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("enter did not return")
		return nil
	}
}

func blocked(c <-chan error) bool {
	select {
	case <-c:
		return false
	case <-time.After(50 * time.Millisecond):
		return true
	}
}

// TestGate: one node probes while the rest wait; a probe that settles the
// key opens the gate for all, one that could not reach its node hands the
// probe to the next; cancelling a wait returns its context's error.
func TestGate(t *testing.T) {
	ctx := context.Background()
	t.Run("open", func(t *testing.T) {
		g := newGate()
		g.openNow()
		if err := recv(t, enterAsync(ctx, g)); err != nil {
			t.Fatalf("open gate: %v, want no probe", err)
		}
	})
	t.Run("settled", func(t *testing.T) {
		g := newGate()
		if err := recv(t, enterAsync(ctx, g)); err != errProbe {
			t.Fatalf("first enter: %v, want probe", err)
		}
		waiter := enterAsync(ctx, g)
		if !blocked(waiter) {
			t.Fatal("a second node went on while the first probes")
		}
		g.leave(true)
		if err := recv(t, waiter); err != nil {
			t.Fatalf("after a settled probe: %v, want no probe", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		g := newGate()
		recv(t, enterAsync(ctx, g))
		waiter := enterAsync(ctx, g)
		g.leave(false)
		if err := recv(t, waiter); err != errProbe {
			t.Fatalf("after an unreachable probe: %v, want the next node to probe", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		g := newGate()
		recv(t, enterAsync(ctx, g))
		cctx, cancel := context.WithCancel(ctx)
		waiter := enterAsync(cctx, g)
		cancel()
		if err := recv(t, waiter); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled wait: %v", err)
		}
	})
}
