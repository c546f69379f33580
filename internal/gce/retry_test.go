//go:build unix

package gce_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/emutest"
	"github.com/gkessh/gkessh/internal/gce"
)

// TestRetryAfter401: a refused token is dropped and the call made once
// more; a source that keeps failing gets one retry, not a loop.
func TestRetryAfter401(t *testing.T) {
	srv, url := emutest.Serve(t, emulator.Config{Logf: t.Logf})
	cases := []struct {
		name            string
		toks            []string
		wantErr         bool
		wantInvalidated int
	}{
		{"stale then fresh", []string{"stale", srv.Token()}, false, 1},
		{"always refused", []string{"stale"}, true, 1},
		{"fine", []string{srv.Token()}, false, 0},
	}
	for _, tc := range cases {
		ts := emutest.NewTokens(tc.toks...)
		c, err := gce.New(context.Background(), srv.ProjectName(), url+"/compute/v1/", ts)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Project(testCtx(t))
		var ae *gce.APIError
		if tc.wantErr != (err != nil) || (err != nil && (!errors.As(err, &ae) || ae.Code != 401)) {
			t.Errorf("%s: err %v, want error %v (a 401)", tc.name, err, tc.wantErr)
		}
		if ts.Invalidated() != tc.wantInvalidated {
			t.Errorf("%s: invalidated %d times, want %d", tc.name, ts.Invalidated(), tc.wantInvalidated)
		}
	}
}

// TestRateLimitedCallsWait: calls over the project's rate quota get 429
// RESOURCE_EXHAUSTED (the emulator's APIRate); the client waits with
// jitter and makes them again, so 30 calls at once against 10 a second all
// succeed, and it counts the retries for a summary to report.
func TestRateLimitedCallsWait(t *testing.T) {
	srv, url := emutest.Serve(t, emulator.Config{Logf: func(string, ...any) {}})
	c, err := gce.New(context.Background(), srv.ProjectName(), url+"/compute/v1/", emutest.NewTokens(srv.Token()))
	if err != nil {
		t.Fatal(err)
	}
	c.Backoff = gce.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second, Attempts: 20}
	srv.SetFaults(emulator.Faults{APIRate: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Project(ctx)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a call failed: %v", err)
		}
	}
	refused := srv.Stats().RateLimited
	again, waited := c.RateLimited()
	if refused == 0 || again != refused {
		t.Errorf("emulator refused %d calls, client made %d again; want the same, above 0", refused, again)
	}
	// Each wait is at least half of Base.
	if least := time.Duration(again) * c.Backoff.Base / 2; waited < least {
		t.Errorf("%d calls made again after %v of waits in all, want at least %v", again, waited, least)
	}
}

// TestBackoffDelay: each wait is between half and all of min(Base·2ⁿ,
// Max), so waits grow, stay capped and are never all the same.
func TestBackoffDelay(t *testing.T) {
	b := gce.Backoff{Base: time.Second, Max: 32 * time.Second, Attempts: 8}
	for n, full := range []time.Duration{1, 2, 4, 8, 16, 32, 32, 32} {
		full *= time.Second
		seen := map[time.Duration]bool{}
		for range 50 {
			d := b.Delay(n)
			if d < full/2 || d > full {
				t.Errorf("Delay(%d) = %v, want %v to %v", n, d, full/2, full)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("Delay(%d): one value in 50 draws, want jitter", n)
		}
	}
}

// TestGiveUpAfterAttempts: a rate refusal that never ends ends the call
// after the attempts, with the 429.
func TestGiveUpAfterAttempts(t *testing.T) {
	srv, url := emutest.Serve(t, emulator.Config{Logf: func(string, ...any) {}})
	c, err := gce.New(context.Background(), srv.ProjectName(), url+"/compute/v1/", emutest.NewTokens(srv.Token()))
	if err != nil {
		t.Fatal(err)
	}
	c.Backoff = gce.Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond, Attempts: 3}
	srv.SetFaults(emulator.Faults{APIRate: 0.001}) // one call, then none for 1000 s
	c.Project(testCtx(t))
	srv.ResetStats()
	_, err = c.Project(testCtx(t))
	if !gce.IsRateLimited(err) || srv.Stats().APICalls != 4 {
		t.Errorf("err %v after %d calls; want a 429 after 1 call and 3 more", err, srv.Stats().APICalls)
	}
}

// TestTokenWaitEndsWithCtx: a call whose token source stalls ends when
// its ctx does, with ctx's error.
func TestTokenWaitEndsWithCtx(t *testing.T) {
	srv, url := emutest.Serve(t, emulator.Config{})
	ts := emutest.NewStalled(t)
	c, err := gce.New(context.Background(), srv.ProjectName(), url+"/compute/v1/", ts)
	if err != nil {
		t.Fatal(err)
	}
	ts.EndsWithCtx(t, func(ctx context.Context) error {
		_, err := c.Project(ctx)
		return err
	})
}
