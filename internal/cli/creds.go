package cli

import (
	"cmp"
	"context"

	"github.com/gkessh/gkessh/internal/auth"
	"github.com/gkessh/gkessh/internal/gcloud"
	"github.com/gkessh/gkessh/internal/transport"
)

// authSource finds the credentials as gcloud would (package auth), from
// the flags, env and the gcloud configuration, fetching tokens over tr and
// caching them in cacheDir ("": in memory only); logf hears which source
// was chosen and each token fetch.
func authSource(ctx context.Context, g globalOptions, env gcloud.LookupEnv, cacheDir string, logf func(string, ...any), cfg *gcloud.Config, tr *transport.Transport) (*auth.Source, error) {
	_, userTokenHost := tr.TokenHost()
	o := auth.Options{
		TokenFile:       g.TokenFile,
		TokenFileOrigin: cmp.Or(g.TokenFileOrigin, "--access-token-file"),
		Env:             env,
		Impersonate:     g.Impersonate,
		// The flag's name, for messages; without the flag auth reads
		// gcloud's property and names where it found it.
		ImpersonateOrigin: "--impersonate-service-account",
		CacheDir:          cacheDir,
		Gcloud:            cfg,
		HTTP:              tr.OAuthClient(),
		IAMCredentials:    tr.Endpoint(transport.IAMCredentials).URL,
		UserTokenHost:     userTokenHost,
		Universe:          tr.Universe().Value,
		Logf:              logf,
	}
	return auth.New(ctx, o)
}
