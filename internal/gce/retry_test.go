//go:build unix

package gce_test

import (
	"context"
	"errors"
	"testing"

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
