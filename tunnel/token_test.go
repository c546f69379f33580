//go:build unix

package tunnel_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/emutest"
	"github.com/gkessh/gkessh/tunnel"
)

// TestRefusedTokenRetriedOnce: a relay refusal (4033) drops the token and
// dials once more with a new one; a source that keeps failing gets one
// retry, then the refusal.
func TestRefusedTokenRetriedOnce(t *testing.T) {
	r := newRelay(t)
	r.echo(t, 8080)
	for _, tc := range []struct {
		name string
		toks []string
		ok   bool
	}{
		{"stale then fresh", []string{"stale", r.srv.Token()}, true},
		{"always refused", []string{"stale"}, false},
	} {
		ts := emutest.NewTokens(tc.toks...)
		d := *r.dialer
		d.TokenSource = ts
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := d.DialContext(ctx, r.target(8080))
		cancel()
		var ce *tunnel.CloseError
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && (!errors.As(err, &ce) || ce.Code != tunnel.CodeNotAuthorized):
			t.Errorf("%s: err %v, want the relay's 4033", tc.name, err)
		}
		if c != nil {
			c.Close()
		}
		if ts.Invalidated() != 1 {
			t.Errorf("%s: invalidated %d times, want 1", tc.name, ts.Invalidated())
		}
	}
}

// TestResumeWithNewToken: a tunnel whose token expired while it ran
// resumes after the relay drops it, with a new token, losing nothing.
func TestResumeWithNewToken(t *testing.T) {
	r := newRelay(t)
	r.echo(t, 8080)
	r.srv.AddGrant("first", emulator.Grant{Projects: []string{r.srv.ProjectName()}})
	ts := emutest.NewTokens("first", r.srv.Token())
	d := *r.dialer
	d.TokenSource = ts
	r.srv.SetFaults(emulator.Faults{DropAfterBytes: 64 << 10}) // every websocket breaks after 64 KiB
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, r.target(8080))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The first token expires while the tunnel runs.
	r.srv.AddGrant("first", emulator.Grant{Projects: []string{r.srv.ProjectName()}, Expiry: time.Now().Add(-time.Second)})
	want := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB: several drops
	go c.Write(want)
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read through the resumed tunnel: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the echo differs")
	}
	if ts.Invalidated() != 1 {
		t.Errorf("invalidated %d times, want 1 (the expired token, once)", ts.Invalidated())
	}
}

// TestTokenWaitEndsWithCtx: a dial whose token source stalls ends when
// its ctx does, with ctx's error.
func TestTokenWaitEndsWithCtx(t *testing.T) {
	r := newRelay(t)
	ts := emutest.NewStalled(t)
	d := *r.dialer
	d.TokenSource = ts
	ts.EndsWithCtx(t, func(ctx context.Context) error {
		c, err := d.DialContext(ctx, r.target(8080))
		if c != nil {
			c.Close()
		}
		return err
	})
}
