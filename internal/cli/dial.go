package cli

import (
	"context"

	"golang.org/x/oauth2"

	"github.com/gkessh/gkessh/tunnel"
)

// iapDialer returns the IAP tunnel dialer every command shares: the
// configured relay, tokens cached in memory until they expire, and a
// User-Agent naming gkessh.
func (o globalOptions) iapDialer(ctx context.Context, logf func(string, ...any)) (*tunnel.Dialer, error) {
	ts, err := o.tokenSource(ctx)
	if err != nil {
		return nil, err
	}
	return &tunnel.Dialer{
		Endpoint:    o.IAPEndpoint,
		TokenSource: oauth2.ReuseTokenSource(nil, ts),
		UserAgent:   "gkessh/" + Version,
		Logf:        logf,
	}, nil
}
