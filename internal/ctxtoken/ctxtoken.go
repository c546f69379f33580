// Package ctxtoken asks an oauth2.TokenSource for a token within the
// caller's context, when the source can take one: oauth2.TokenSource's
// Token has none, so Ctrl-C would wait out a stalled token endpoint.
package ctxtoken

import (
	"context"

	"golang.org/x/oauth2"
)

// Source is a token source whose wait for a token ctx can end
// (auth.Source).
type Source interface {
	TokenContext(ctx context.Context) (*oauth2.Token, error)
}

// Token asks ts for a token, within ctx when ts is a Source.
func Token(ctx context.Context, ts oauth2.TokenSource) (*oauth2.Token, error) {
	if s, ok := ts.(Source); ok {
		return s.TokenContext(ctx)
	}
	return ts.Token()
}
