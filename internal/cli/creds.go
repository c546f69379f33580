package cli

import (
	"context"
	"os"

	"github.com/gkessh/gkessh/auth"
)

// authSource finds the credentials as gcloud would (package auth), from
// the flags; logf hears which source was chosen and each token fetch.
func authSource(ctx context.Context, g globalOptions, logf func(string, ...any)) (*auth.Source, error) {
	return auth.New(ctx, auth.Options{
		TokenFile:       g.TokenFile,
		TokenFileOrigin: tokenFileOrigin(g.TokenFile),
		Impersonate:     g.Impersonate,
		Logf:            logf,
	})
}

// tokenFileOrigin says where --access-token-file's value came from.
func tokenFileOrigin(file string) string {
	for _, v := range []string{"GKESSH_ACCESS_TOKEN_FILE", "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"} {
		if file != "" && os.Getenv(v) == file {
			return v
		}
	}
	return "--access-token-file"
}
