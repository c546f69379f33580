package broadcast

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func random(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestEveryReaderGetsAll: every reader gets the whole stream, whether the
// readers run together, one after another (the later ones from the spool),
// or in waves as `run -P` starts nodes.
func TestEveryReaderGetsAll(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		readers int
		waves   int // readers open in this many waves, each after the last wave finished
		window  int
	}{
		{"empty", 0, 3, 1, 0},
		{"one byte", 1, 3, 1, 0},
		{"together", 300 << 10, 4, 1, 64 << 10},
		{"one after another", 300 << 10, 3, 3, 64 << 10},
		{"waves", 1 << 20, 6, 2, 100 << 10},
		{"tiny window", 200 << 10, 2, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := random(t, tt.size)
			b := New(bytes.NewReader(src), tt.readers, tt.window)
			defer b.Close()
			per := tt.readers / tt.waves
			for w := 0; w < tt.waves; w++ {
				var wg sync.WaitGroup
				for range per {
					r := b.Open()
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer r.Close()
						got, err := io.ReadAll(r)
						if err != nil || !bytes.Equal(got, src) {
							t.Errorf("wave %d: %d of %d bytes, equal %v, err %v", w, len(got), len(src), bytes.Equal(got, src), err)
						}
					}()
				}
				wg.Wait()
			}
		})
	}
}

// boundedSource checks, on every read, that the source is never read more
// than the window (plus the one read in flight) ahead of the reader that
// stays at 0: back-pressure.
type boundedSource struct {
	t     *testing.T
	rest  int
	read  int
	limit int
	free  atomic.Bool // the reader at 0 closed: no limit
}

func (s *boundedSource) Read(p []byte) (int, error) {
	if s.rest == 0 {
		return 0, io.EOF
	}
	if s.read >= s.limit && !s.free.Load() {
		s.t.Errorf("the source was read to %d bytes while a reader is at 0 (limit %d)", s.read, s.limit)
	}
	n := min(len(p), s.rest)
	s.rest -= n
	s.read += n
	return n, nil
}

// TestBackPressure: a reader that reads nothing holds the source back to
// the window; once it closes, the others get the rest.
func TestBackPressure(t *testing.T) {
	const window = 64 << 10
	const size = 40 * window
	src := &boundedSource{t: t, rest: size, limit: window + chunkSize}
	b := New(src, 2, window)
	defer b.Close()
	fast, idle := b.Open(), b.Open()
	got := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, fast)
		got <- n
	}()
	// The fast reader is held back: wait until it has what the window
	// allows, which it must reach, then release it.
	for {
		b.mu.Lock()
		at := fast.off
		b.mu.Unlock()
		if at >= window {
			break
		}
		time.Sleep(time.Millisecond)
	}
	src.free.Store(true)
	idle.Close()
	if n := <-got; n != size {
		t.Errorf("fast reader got %d bytes, want %d", n, size)
	}
}

// TestClose: closing a reader ends its blocked Read; closing the
// broadcaster interrupts a read of a pipe that never delivers, and its
// goroutine has ended when Close returns.
func TestClose(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	defer pr.Close()
	b := New(pr, 2, 0)
	r1, r2 := b.Open(), b.Open()
	errs := make(chan error, 2)
	for _, r := range []*Reader{r1, r2} {
		go func() {
			_, err := r.Read(make([]byte, 10))
			errs <- err
		}()
	}
	r1.Close()
	if err := <-errs; !errors.Is(err, ErrClosed) {
		t.Errorf("closed reader: %v, want ErrClosed", err)
	}
	b.Close()
	if err := <-errs; !errors.Is(err, ErrClosed) {
		t.Errorf("reader of a closed broadcaster: %v, want ErrClosed", err)
	}
	select {
	case <-b.done:
	default:
		t.Error("the pump goroutine outlived Close")
	}
}

// TestSourceError: a failing source fails every reader with its error
// after the bytes it delivered.
func TestSourceError(t *testing.T) {
	boom := errors.New("boom")
	b := New(io.MultiReader(bytes.NewReader([]byte("abc")), errReader{boom}), 2, 0)
	defer b.Close()
	for range 2 {
		r := b.Open()
		got, err := io.ReadAll(r)
		if string(got) != "abc" || !errors.Is(err, boom) {
			t.Errorf("got %q, %v", got, err)
		}
		r.Close()
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
