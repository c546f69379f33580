package tunnel

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestRateLimitWait: the waits after a 429 double from 250 ms to 8 s, each
// a random point between half the step and all of it.
func TestRateLimitWait(t *testing.T) {
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 125 * time.Millisecond, 250 * time.Millisecond},
		{2, 250 * time.Millisecond, 500 * time.Millisecond},
		{5, 2 * time.Second, 4 * time.Second},
		{6, 4 * time.Second, 8 * time.Second},
		{10, 4 * time.Second, 8 * time.Second},
		{100, 4 * time.Second, 8 * time.Second},
	}
	for _, tt := range tests {
		low, high := rateLimitWait(tt.n, func() float64 { return 0 }), rateLimitWait(tt.n, func() float64 { return 0.999999 })
		if low != tt.min || high < tt.max-time.Millisecond || high > tt.max {
			t.Errorf("retry %d: waits %v to %v, want %v to %v", tt.n, low, high, tt.min, tt.max)
		}
	}
}

// TestRateLimitGivesUp: a relay that answers every websocket with HTTP 429
// ends a dial with a *RateLimitError after the retries (11 requests), and a
// context that ends first ends the wait, with both named in the error.
func TestRateLimitGivesUp(t *testing.T) {
	var requests atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
	}))
	defer hs.Close()
	d := &Dialer{Endpoint: "ws://" + hs.Listener.Addr().String(), Logf: t.Logf,
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"})}
	base, limit := rateLimitBase, rateLimitCap
	defer func() { rateLimitBase, rateLimitCap = base, limit }()

	rateLimitBase, rateLimitCap = time.Millisecond, 2*time.Millisecond
	_, err := d.DialContext(context.Background(), target)
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.Retries != rateLimitRetries || requests.Load() != int32(rateLimitRetries+1) {
		t.Errorf("dial: %v after %d requests, want a *RateLimitError after %d", err, requests.Load(), rateLimitRetries+1)
	}

	rateLimitBase, rateLimitCap = time.Hour, time.Hour
	requests.Store(0)
	// Long enough for the first 429 to arrive on a loaded machine: a
	// context that ends before it ends the dial with no 429 to name.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = d.DialContext(ctx, target)
	if !errors.As(err, &rl) || !errors.Is(err, context.DeadlineExceeded) || requests.Load() != 1 {
		t.Errorf("dial: %v after %d requests, want the 429 and the context's end after 1", err, requests.Load())
	}
}
