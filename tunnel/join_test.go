package tunnel

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// blockingLocal is a local side whose Write blocks until Close, and which
// records a CloseWrite made while a Write is under way: an ssh channel's
// CloseWrite races with its Write (x/crypto sets sentEOF unlocked).
type blockingLocal struct {
	mu       sync.Mutex
	writing  bool
	overlap  bool
	inWrite  chan struct{}
	closed   chan struct{}
	closeOne sync.Once
}

func (l *blockingLocal) Read([]byte) (int, error) { <-l.closed; return 0, net.ErrClosed }

func (l *blockingLocal) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.writing = true
	l.mu.Unlock()
	defer func() { l.mu.Lock(); l.writing = false; l.mu.Unlock() }()
	close(l.inWrite)
	<-l.closed
	return 0, net.ErrClosed
}

func (l *blockingLocal) CloseWrite() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.writing {
		l.overlap = true
	}
	return nil
}

func (l *blockingLocal) Close() error {
	l.closeOne.Do(func() { close(l.closed) })
	return nil
}

// TestJoinCancelDoesNotCloseWriteDuringWrite cancels a join while its
// local write is blocked: the write must be ended by Close, not by a
// CloseWrite racing with it (TestSSHForwards failed under -race so).
func TestJoinCancelDoesNotCloseWriteDuringWrite(t *testing.T) {
	c, peer := net.Pipe()
	defer peer.Close()
	l := &blockingLocal{inWrite: make(chan struct{}), closed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- join(ctx, c, l, l, nil) }()
	go peer.Write([]byte(strings.Repeat("x", 10)))
	<-l.inWrite
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("join = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("join did not return after cancel")
	}
	if l.overlap {
		t.Error("CloseWrite was called while a Write was under way")
	}
}
