package cli

import (
	"os"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/gkessh/gkessh/internal/gcloud"

	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/knownhosts"
)

// globalOptions are the flags every command that talks to Google shares.
type globalOptions struct {
	Project string
	// ProjectOrigin says where Project came from, as TokenFileOrigin
	// does; "" when gcloud's core/project is used.
	ProjectOrigin string
	Zone          string
	TokenFile     string
	// TokenFileOrigin says where TokenFile came from: the flag or the
	// variable that set it.
	TokenFileOrigin string
	Impersonate     string // SA[,DELEGATES]: the last is the target
	ComputeEndpoint string
	IAPEndpoint     string
	// ComputeOrigin and IAPOrigin say where the endpoints came from, as
	// TokenFileOrigin does.
	ComputeOrigin, IAPOrigin string
	// InsecureIAP skips TLS verification of the relay, as gcloud's
	// --iap-tunnel-insecure-disable-websocket-cert-check does.
	InsecureIAP bool
	Verbose     bool
	// DryRun (--dry-run, where a command takes it): nothing goes to disk,
	// not even the zone cache, a token or a pinned host key.
	DryRun bool
}

// globalFlags are the flags gkessh's commands share. They are defined once,
// on gkessh itself: hoistFlags moves them there from wherever they were
// typed, before or after the command, and the commands read them from
// there (urfave looks a flag up through the parent commands). Which
// command honours which is globalsOf. Each call makes new flags: urfave
// writes into a flag as it parses. Their environment variables are
// globalEnv's, read through deps, not urfave's EnvVars, which read the
// process's environment.
func globalFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "project", Usage: "the Google Cloud project"},
		&ucli.StringFlag{Name: "zone", Usage: "instance zone (looked up and cached when omitted)"},
		&ucli.StringFlag{Name: "access-token-file", Usage: "file holding an OAuth2 access token (else gcloud's credentials, then Application Default Credentials)"},
		&ucli.StringFlag{Name: "impersonate-service-account", Usage: "act as this service account (`SA[,DELEGATE...]`, gcloud's order: the last is the target); else CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT or gcloud's auth/impersonate_service_account"},
		&ucli.StringFlag{Name: "compute-endpoint", Usage: "base URL of the Compute API"},
		&ucli.StringFlag{Name: "iap-endpoint", Aliases: []string{"iap-tunnel-url-override"}, Usage: "base URL of the IAP relay (gcloud's --iap-tunnel-url-override)"},
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
		&ucli.BoolFlag{Name: "dry-run", Usage: "say what would be done and change nothing: no metadata, no file, no connection"},
		&ucli.StringFlag{Name: "user", Usage: "user name on the node (default: your local login name)"},
		&ucli.StringFlag{Name: "key-file", Aliases: []string{"ssh-key-file"}, Usage: "private key file; the public key is FILE.pub (default ~/.ssh/google_compute_engine, created if missing; gcloud's --ssh-key-file)"},
		&ucli.BoolFlag{Name: "force-key-file-overwrite", Usage: "when the key files cannot be used as they are (a .pub without its private key, a file ssh cannot parse, a .pub of another key), replace them with a new pair instead of stopping (gcloud's flag)"},
		&ucli.StringFlag{Name: "scope", Usage: "metadata for the key: project or instance (default: project, or the instance's own when it blocks project keys)"},
		&ucli.StringFlag{Name: "key-expire-after", Aliases: []string{"ssh-key-expire-after"}, Value: "24h", Usage: "lifetime of the metadata key, as gcloud reads it: 30m, 24h, 1d12h, P1D, 90 (seconds); 0 for a key that never expires"},
		&ucli.StringFlag{Name: "ssh-key-expiration", Usage: "when the metadata key expires, as gcloud reads it: 2030-08-29T18:52:51Z, 2030-08-29 10:00, +1d (gcloud's flag; instead of --key-expire-after)"},
		&ucli.StringFlag{Name: "strict-host-key-checking", Usage: "yes: only recorded or guest-published host keys; accept-new: also trust on first use when the guest published none; no: accept any (default: accept-new; config-ssh and inventory: yes, what they write for ssh)"},
	}
}

// globalEnv are the environment variables that stand for global flags not
// given, by flag name, in order: the first one set wins, even when empty.
var globalEnv = map[string][]string{
	"project":           {"CLOUDSDK_CORE_PROJECT"},
	"access-token-file": {"GKESSH_ACCESS_TOKEN_FILE"},
	"compute-endpoint":  {"GKESSH_COMPUTE_ENDPOINT"},
	"iap-endpoint":      {"GKESSH_IAP_ENDPOINT"},
}

// flagOrEnv is the global flag name's value, else the first of its
// variables that env has; from says which of the two it was.
func flagOrEnv(c *ucli.Context, name string) (value, from string) {
	if c.IsSet(name) {
		return c.String(name), "--" + name
	}
	env := envOf(c)
	for _, v := range globalEnv[name] {
		if s, ok := env(v); ok {
			return s, v
		}
	}
	return "", ""
}

// envOf is the environment the app was made with (newApp puts deps.env in
// its Metadata): tests run apps side by side, each with its own.
func envOf(c *ucli.Context) gcloud.LookupEnv {
	if env, ok := c.App.Metadata[envKey].(gcloud.LookupEnv); ok {
		return env
	}
	return os.LookupEnv
}

// envKey is where newApp keeps deps.env in the app's Metadata.
const envKey = "env"

// The global flags by what a command must do to honour them.
var (
	// googleGlobals: it calls a Google API.
	googleGlobals = []string{"project", "zone", "access-token-file", "impersonate-service-account", "compute-endpoint", "verbose", "verbosity"}
	// iapGlobals: it opens IAP tunnels.
	iapGlobals = []string{"iap-endpoint", "iap-tunnel-insecure-disable-websocket-cert-check"}
	// keyGlobals: it puts the user's key into metadata.
	keyGlobals = []string{"user", "key-file", "force-key-file-overwrite", "scope", "key-expire-after", "ssh-key-expiration"}
)

// globalsOf lists, by each command's full name, the global flags it
// honours: given any other, before or after the command, it refuses to run
// (hoistFlags), so no flag is parsed and then dropped. A command with
// subcommands honours what they do; one missing here honours none.
var globalsOf = map[string][]string{
	"gkessh":             allGlobals(),
	"gkessh proxy":       slices.Concat(googleGlobals, iapGlobals, keyGlobals),
	"gkessh tunnel":      slices.Concat(googleGlobals, iapGlobals),
	"gkessh keys ensure": slices.Concat(googleGlobals, keyGlobals, []string{"dry-run"}),
	"gkessh keys list":   googleGlobals,
	"gkessh keys remove": slices.Concat(googleGlobals, []string{"user", "key-file", "scope", "dry-run"}),
	"gkessh keys prune":  slices.Concat(googleGlobals, []string{"user", "key-file", "scope", "dry-run"}),
	"gkessh config-ssh":  slices.Concat(googleGlobals, []string{"user", "key-file", "force-key-file-overwrite", "strict-host-key-checking", "dry-run"}),
	"gkessh inventory":   slices.Concat(googleGlobals, []string{"user", "key-file", "strict-host-key-checking"}),
	"gkessh doctor":      slices.Concat(googleGlobals, iapGlobals, []string{"user", "key-file"}),
	"gkessh audit":       slices.Concat(googleGlobals, iapGlobals, keyGlobals, []string{"strict-host-key-checking", "dry-run"}),
	"gkessh run":         slices.Concat(googleGlobals, iapGlobals, keyGlobals, []string{"strict-host-key-checking", "dry-run"}),
	"gkessh cp":          slices.Concat(googleGlobals, iapGlobals, keyGlobals, []string{"strict-host-key-checking", "dry-run"}),
	"gkessh scp":         slices.Concat(googleGlobals, iapGlobals, keyGlobals, []string{"strict-host-key-checking", "dry-run"}),
}

// allGlobals are the names of every global flag, aliases aside.
func allGlobals() []string {
	return firstNames(globalFlags())
}

// globalName maps every name of a global flag, aliases included, to its
// first name.
var globalName = func() map[string]string {
	m := map[string]string{}
	for _, f := range globalFlags() {
		names := f.Names()
		for _, n := range names {
			m[n] = names[0]
		}
	}
	return m
}()

// honours reports whether the command at path (its full name, "gkessh
// keys list") honours the global flag name (its first name), or, for a
// command with subcommands, whether one of them does.
func honours(path string, name string) bool {
	if slices.Contains(globalsOf[path], name) {
		return true
	}
	prefix := path + " "
	for p, names := range globalsOf {
		if strings.HasPrefix(p, prefix) && slices.Contains(names, name) {
			return true
		}
	}
	return false
}

// honoured are the global flags the command at path honours, of app's
// global flags named names (firstNames), and their names.
func honoured(app *ucli.App, names []string, path string) (flags []ucli.Flag, flagNames []string) {
	for i, f := range app.Flags {
		if g, ok := globalName[names[i]]; ok && honours(path, g) {
			flags, flagNames = append(flags, f), append(flagNames, names[i])
		}
	}
	return flags, flagNames
}

// firstNames are flags' first names, read once: urfave/cli's Names runs
// a regexp on every call, and the help of each command names the global
// flags it honours, which cost every gkessh process ~0.8 ms.
func firstNames(flags []ucli.Flag) []string {
	names := make([]string, len(flags))
	for i, f := range flags {
		names[i] = f.Names()[0]
	}
	return names
}

func globals(c *ucli.Context) globalOptions {
	g := globalOptions{
		Zone:        c.String("zone"),
		Impersonate: c.String("impersonate-service-account"),
		InsecureIAP: c.Bool("iap-tunnel-insecure-disable-websocket-cert-check"),
		Verbose:     c.Bool("verbose") || c.String("verbosity") == "debug" || c.String("verbosity") == "info",
		DryRun:      c.Bool("dry-run"),
	}
	g.Project, g.ProjectOrigin = flagOrEnv(c, "project")
	g.TokenFile, g.TokenFileOrigin = flagOrEnv(c, "access-token-file")
	g.ComputeEndpoint, g.ComputeOrigin = flagOrEnv(c, "compute-endpoint")
	g.IAPEndpoint, g.IAPOrigin = flagOrEnv(c, "iap-endpoint")
	return g
}

// strictFlagValue reads and checks --strict-host-key-checking, def when
// not given.
func strictFlagValue(c *ucli.Context, def knownhosts.StrictMode) (knownhosts.StrictMode, error) {
	s := c.String("strict-host-key-checking")
	if s == "" {
		return def, nil
	}
	m, err := knownhosts.ParseStrictMode(s)
	if err != nil {
		return m, usagef("--strict-host-key-checking: %v", err)
	}
	return m, nil
}

// checkScope refuses a --scope other than project or instance.
func checkScope(scope string) error {
	switch scope {
	case "", keys.ScopeProject, keys.ScopeInstance:
		return nil
	}
	return usagef("--scope %q: use project or instance", scope)
}
