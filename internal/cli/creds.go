package cli

import (
	"context"
	"os"

	"github.com/gkessh/gkessh/internal/auth"
)

// authSource finds the credentials as gcloud would (package auth), from
// the flags; logf hears which source was chosen and each token fetch. A dry
// run keeps tokens in memory only: it writes nothing to disk.
func authSource(ctx context.Context, g globalOptions, dryRun bool, logf func(string, ...any)) (*auth.Source, error) {
	o := auth.Options{
		TokenFile:       g.TokenFile,
		TokenFileOrigin: tokenFileOrigin(g.TokenFile),
		Impersonate:     g.Impersonate,
		// Where auth reads it itself, it names the property's source.
		ImpersonateOrigin: "--impersonate-service-account",
		Logf:              logf,
	}
	if dryRun {
		o.CacheDir = "-"
	}
	return auth.New(ctx, o)
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
