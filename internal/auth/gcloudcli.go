package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// gcloudHelper asks the gcloud command for the account's token, for a
// login gcloud keeps only in its credential database (no adc.json):
// `gcloud config config-helper`, the interface gcloud offers other tools,
// which also says when the token expires, so the disk cache can keep it.
func gcloudHelper(gcloudPath, account string) *Source {
	return &Source{Principal: account, Kind: "gcloud login (gcloud config config-helper)", id: gcloudPath,
		fetch: func(ctx context.Context) (*oauth2.Token, error) {
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, gcloudPath, "config", "config-helper", "--format=json", "--account="+account)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				return nil, fmt.Errorf("gcloud config config-helper: %v: %s", err, strings.TrimSpace(stderr.String()))
			}
			return parseConfigHelper(stdout.Bytes())
		}}
}

// parseConfigHelper reads config-helper's JSON: credential.access_token and
// credential.token_expiry ('%Y-%m-%dT%H:%M:%SZ', or empty).
func parseConfigHelper(b []byte) (*oauth2.Token, error) {
	var out struct {
		Credential struct {
			AccessToken string `json:"access_token"`
			TokenExpiry string `json:"token_expiry"`
		} `json:"credential"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("gcloud config config-helper: unexpected output: %w", err)
	}
	c := out.Credential
	if c.AccessToken == "" {
		return nil, fmt.Errorf("gcloud config config-helper gave no access token")
	}
	tok := &oauth2.Token{AccessToken: c.AccessToken, TokenType: "Bearer"}
	if c.TokenExpiry != "" {
		exp, err := time.Parse(time.RFC3339, c.TokenExpiry)
		if err != nil {
			return nil, fmt.Errorf("gcloud config config-helper: token_expiry %q: %w", c.TokenExpiry, err)
		}
		tok.Expiry = exp
	}
	return tok, nil
}
