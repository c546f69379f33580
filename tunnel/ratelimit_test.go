//go:build unix

package tunnel_test

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
)

// TestRateLimitedDials: a relay that takes one new tunnel a second and
// answers the rest with HTTP 429, as IAP throttles, still gets every one of
// 3 tunnels opened at once: each dial waits and tries again (the first
// wait is 125-250 ms), and each tunnel then works. Without the retry 2 of
// them fail at once with the 429.
func TestRateLimitedDials(t *testing.T) {
	r := newRelay(t)
	r.echo(t, 7)
	r.srv.SetFaults(emulator.Faults{TunnelRate: 1})
	var waits, waited atomic.Int64
	r.dialer.Throttled = func(d time.Duration) {
		waits.Add(1)
		waited.Add(int64(d))
	}
	const n = 3
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := r.dialer.DialContext(ctx, r.target(7))
			if err != nil {
				t.Errorf("tunnel %d: %v", i, err)
				return
			}
			defer c.Close()
			msg := []byte{'a' + byte(i)}
			got := make([]byte, 1)
			c.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Write(msg); err != nil {
				t.Errorf("tunnel %d: %v", i, err)
			} else if _, err := io.ReadFull(c, got); err != nil || got[0] != msg[0] {
				t.Errorf("tunnel %d: echo %q, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	if st := r.srv.Stats(); st.TunnelsThrottled == 0 || st.Tunnels != n {
		t.Errorf("%d websockets taken, %d refused with 429: want %d taken after some refusals", st.Tunnels, st.TunnelsThrottled, n)
	} else if waits.Load() != st.TunnelsThrottled || time.Duration(waited.Load()) < time.Duration(waits.Load())*125*time.Millisecond {
		t.Errorf("Throttled heard %d waits of %v in all; want one per refusal (%d), each at least 125ms", waits.Load(), time.Duration(waited.Load()), st.TunnelsThrottled)
	}
}
