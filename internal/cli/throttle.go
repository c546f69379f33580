package cli

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// throttling counts the waits the run was held to: Compute API calls
// refused for the project's rate quota and made again, and tunnels the
// relay refused with HTTP 429 and dialled again, so that a slow run says
// why.
type throttling struct {
	api                 func() (calls int64, waited time.Duration)
	tunnels, tunnelWait atomic.Int64
}

// tunnel is tunnel.Dialer's Throttled.
func (t *throttling) tunnel(wait time.Duration) {
	t.tunnels.Add(1)
	t.tunnelWait.Add(int64(wait))
}

// String is "" when nothing waited, else the summary's tail, e.g. ";
// throttled: 15 API calls waited 9.2s in all, 10 tunnels waited 3.1s in
// all" (waits at once add up).
func (t *throttling) String() string {
	var parts []string
	say := func(n int64, what string, waited time.Duration) {
		if n == 0 {
			return
		}
		if n != 1 {
			what += "s"
		}
		parts = append(parts, fmt.Sprintf("%d %s waited %v in all", n, what, waited.Round(100*time.Millisecond)))
	}
	if t.api != nil {
		n, waited := t.api()
		say(n, "API call", waited)
	}
	say(t.tunnels.Load(), "tunnel", time.Duration(t.tunnelWait.Load()))
	if len(parts) == 0 {
		return ""
	}
	return "; throttled: " + strings.Join(parts, ", ")
}
