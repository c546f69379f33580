package cli

import (
	ucli "github.com/urfave/cli/v2"
)

// globalOptions are the flags every command that talks to Google shares.
type globalOptions struct {
	Project         string
	Zone            string
	TokenFile       string
	Impersonate     string // SA[,DELEGATES]: the last is the target
	ComputeEndpoint string
	IAPEndpoint     string
	// InsecureIAP skips TLS verification of the relay, as gcloud's
	// --iap-tunnel-insecure-disable-websocket-cert-check does.
	InsecureIAP bool
	Verbose     bool
}

// googleFlags are the flags behind globalOptions, with their environment
// variables. Every command that talks to Google includes them.
func googleFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "project", Usage: "the Google Cloud project", EnvVars: []string{"CLOUDSDK_CORE_PROJECT"}},
		&ucli.StringFlag{Name: "zone", Usage: "instance zone (looked up and cached when omitted)"},
		&ucli.StringFlag{Name: "access-token-file", Usage: "file holding an OAuth2 access token (else gcloud's credentials, then Application Default Credentials)", EnvVars: []string{"GKESSH_ACCESS_TOKEN_FILE", "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"}},
		&ucli.StringFlag{Name: "impersonate-service-account", Usage: "act as this service account (`SA[,DELEGATE...]`, gcloud's order: the last is the target); else CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT or gcloud's auth/impersonate_service_account"},
		&ucli.StringFlag{Name: "compute-endpoint", Usage: "base URL of the Compute API", EnvVars: []string{"GKESSH_COMPUTE_ENDPOINT"}},
		&ucli.StringFlag{Name: "iap-endpoint", Aliases: []string{"iap-tunnel-url-override"}, Usage: "base URL of the IAP relay (gcloud's --iap-tunnel-url-override)", EnvVars: []string{"GKESSH_IAP_ENDPOINT"}},
		&ucli.BoolFlag{Name: "iap-tunnel-insecure-disable-websocket-cert-check", Usage: "do not verify the relay's TLS certificate (gcloud's flag; for test relays only)"},
		&ucli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say what is being done on stderr"},
		// Every ProxyCommand gcloud writes ends with --verbosity=warning.
		&ucli.StringFlag{Name: "verbosity", Usage: "gcloud's: debug or info turn on --verbose; warning (the default), error, critical and none do not",
			Action: func(_ *ucli.Context, v string) error {
				switch v {
				case "debug", "info", "warning", "error", "critical", "none":
					return nil
				}
				return usagef("--verbosity %q: want debug, info, warning, error, critical or none", v)
			}},
	}
}

func globals(c *ucli.Context) globalOptions {
	return globalOptions{
		Project:         c.String("project"),
		Zone:            c.String("zone"),
		TokenFile:       c.String("access-token-file"),
		Impersonate:     c.String("impersonate-service-account"),
		ComputeEndpoint: c.String("compute-endpoint"),
		IAPEndpoint:     c.String("iap-endpoint"),
		InsecureIAP:     c.Bool("iap-tunnel-insecure-disable-websocket-cert-check"),
		Verbose:         c.Bool("verbose") || c.String("verbosity") == "debug" || c.String("verbosity") == "info",
	}
}
