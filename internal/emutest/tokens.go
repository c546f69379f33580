//go:build unix

package emutest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// Tokens is a token source that hands out its tokens in turn, moving to
// the next when the current one is invalidated, as auth.Source does after
// a server refused a token. The last token stays.
type Tokens struct {
	mu          sync.Mutex
	toks        []string
	invalidated int
}

// NewTokens returns a source handing out toks in order.
func NewTokens(toks ...string) *Tokens { return &Tokens{toks: toks} }

// Token returns the current token.
func (r *Tokens) Token() (*oauth2.Token, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &oauth2.Token{AccessToken: r.toks[0]}, nil
}

// Invalidate moves past tok when it is the current token.
func (r *Tokens) Invalidate(tok *oauth2.Token) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.invalidated++
	if tok.AccessToken == r.toks[0] && len(r.toks) > 1 {
		r.toks = r.toks[1:]
	}
}

// Invalidated counts the Invalidate calls.
func (r *Tokens) Invalidated() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.invalidated
}

// Stalled is a token source whose token endpoint never answers, with
// auth.Source's methods: TokenContext waits for its ctx, Token for the
// test's end. Asked gets a value at each call.
type Stalled struct {
	Asked chan struct{}
	ended chan struct{}
}

// NewStalled returns a Stalled whose waits end with the test.
func NewStalled(tb testing.TB) *Stalled {
	s := &Stalled{Asked: make(chan struct{}, 16), ended: make(chan struct{})}
	tb.Cleanup(func() { close(s.ended) })
	return s
}

// Token waits for the test's end.
func (s *Stalled) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext waits for ctx, or the test's end.
func (s *Stalled) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	select {
	case s.Asked <- struct{}{}:
	default:
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.ended:
		return nil, errors.New("stalled token endpoint: the test ended")
	}
}

// Invalidate does nothing: there is no token.
func (s *Stalled) Invalidate(*oauth2.Token) {}

// EndsWithCtx runs call with a ctx that it cancels once call has asked s
// for a token, and fails tb unless call then returns ctx's error.
func (s *Stalled) EndsWithCtx(tb testing.TB, call func(context.Context) error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	// Generous bounds: the call asks at once, and the cancel ends it at once.
	select {
	case <-s.Asked:
	case err := <-done:
		tb.Fatalf("returned %v without asking for a token", err)
	case <-time.After(time.Minute):
		tb.Fatal("no token asked for in a minute")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			tb.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		tb.Fatal("still waiting for a token a minute after ctx was cancelled")
	}
}
