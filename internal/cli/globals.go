package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/gkessh/gkessh/gce"
	"github.com/gkessh/gkessh/gcloud"
)

// globalOptions are the flags every command that talks to Google shares.
type globalOptions struct {
	Project         string
	Zone            string
	TokenFile       string
	ComputeEndpoint string
	IAPEndpoint     string
	Verbose         bool
}

// googleFlags are the flags behind globalOptions, with their environment
// variables. Every command that talks to Google includes them.
func googleFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "project", Usage: "the Google Cloud project", EnvVars: []string{"CLOUDSDK_CORE_PROJECT"}},
		&ucli.StringFlag{Name: "zone", Usage: "instance zone (looked up and cached when omitted)"},
		&ucli.StringFlag{Name: "access-token-file", Usage: "file holding an OAuth2 access token (else Application Default Credentials)", EnvVars: []string{"GKESSH_ACCESS_TOKEN_FILE", "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"}},
		&ucli.StringFlag{Name: "compute-endpoint", Usage: "base URL of the Compute API", EnvVars: []string{"GKESSH_COMPUTE_ENDPOINT"}},
		&ucli.StringFlag{Name: "iap-endpoint", Usage: "base URL of the IAP relay", EnvVars: []string{"GKESSH_IAP_ENDPOINT"}},
		&ucli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say what is being done on stderr"},
	}
}

func globals(c *ucli.Context) globalOptions {
	return globalOptions{
		Project:         c.String("project"),
		Zone:            c.String("zone"),
		TokenFile:       c.String("access-token-file"),
		ComputeEndpoint: c.String("compute-endpoint"),
		IAPEndpoint:     c.String("iap-endpoint"),
		Verbose:         c.Bool("verbose"),
	}
}

// project returns --project (or CLOUDSDK_CORE_PROJECT), else the active gcloud
// configuration's core/project.
func (o globalOptions) project() (string, error) {
	if o.Project != "" {
		return o.Project, nil
	}
	cfg, err := gcloud.Load(nil)
	if err != nil {
		return "", err
	}
	if p := cfg.Project(); p != "" {
		return p, nil
	}
	return "", usagef("no project: pass --project, set CLOUDSDK_CORE_PROJECT, or run 'gcloud config set project PROJECT'")
}

// tokenSource returns the access token source: a token file when given,
// else Application Default Credentials. Tokens stay in memory.
func (o globalOptions) tokenSource(ctx context.Context) (oauth2.TokenSource, error) {
	if o.TokenFile != "" {
		return fileTokenSource(o.TokenFile), nil
	}
	ts, err := google.DefaultTokenSource(ctx, "https://www.googleapis.com/auth/cloud-platform")
	if err != nil {
		return nil, fmt.Errorf("no credentials: run 'gcloud auth application-default login' or pass --access-token-file: %w", err)
	}
	return ts, nil
}

// fileTokenSource reads the token file on every call, so a token refreshed
// by whoever writes the file is picked up on reconnect.
type fileTokenSource string

func (f fileTokenSource) Token() (*oauth2.Token, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return nil, fmt.Errorf("read access token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return nil, errors.New("read access token: " + string(f) + " is empty")
	}
	return &oauth2.Token{AccessToken: tok, TokenType: "Bearer", Expiry: time.Now().Add(time.Minute)}, nil
}

// compute returns a Compute API client for the resolved project.
func (o globalOptions) compute(ctx context.Context) (*gce.Client, error) {
	project, err := o.project()
	if err != nil {
		return nil, err
	}
	ts, err := o.tokenSource(ctx)
	if err != nil {
		return nil, err
	}
	c, err := gce.New(ctx, project, o.ComputeEndpoint, ts)
	if err != nil {
		return nil, err
	}
	c.UserAgent = "gkessh/" + Version
	return c, nil
}
