//go:build unix

package emutest

import (
	"sync"

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
