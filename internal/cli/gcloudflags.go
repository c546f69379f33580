package cli

// gcloudOnly are flags of gcloud compute ssh, start-iap-tunnel,
// config-ssh and gcloud itself that gkessh does not take, each with what
// to do instead, so that a gcloud command line gets a way forward rather
// than "flag provided but not defined". A flag a command does take is
// never looked up here.
var gcloudOnly = map[string]string{
	"network":    onPrem,
	"region":     onPrem,
	"dest-group": onPrem,
	// gcloud's --no-… form of its boolean flag; gkessh's default.
	"no-force-key-file-overwrite": "gkessh never replaces a broken key file unless --force-key-file-overwrite is given: drop it",
	// Hidden in gcloud: a test login before --internal-ip's.
	"verify-internal-ip":    "gkessh checks the node's host key instead (--strict-host-key-checking yes refuses an unknown one): drop it",
	"no-verify-internal-ip": "gkessh checks the node's host key instead of a test login: drop it",
	"account":               "set CLOUDSDK_CORE_ACCOUNT, or gcloud config set account",
	"configuration":         "set CLOUDSDK_ACTIVE_CONFIG_NAME",
	"billing-project":       "set CLOUDSDK_BILLING_QUOTA_PROJECT, or gcloud config set billing/quota_project",
	"quiet":                 "gkessh never prompts: drop it",
	"q":                     "gkessh never prompts: drop it",
	"format":                "run, cp, audit and keys list take --format table|json",
	"flatten":               "run, cp, audit and keys list --format json print JSON to process instead",
	"log-http":              "-v says what is being done, naming each API call's endpoint; no request is printed",
	"flags-file":            "put the flags on the command line",
	"trace-token":           "not supported",
	"user-output-enabled":   "redirect the output instead",
}

// onPrem is what to do instead of gcloud's IAP TCP forwarding to a host
// that is not an instance.
const onPrem = "gcloud reaches hosts that are not instances with it (on-premises, through an IAP destination group); " +
	"gkessh reaches Compute Engine instances, by name: use gcloud compute start-iap-tunnel for other hosts"

// gcloudOnlyError is the usage error for typed, a flag of gcloud's only,
// or nil when it is none.
func gcloudOnlyError(typed string) error {
	name := flagName(typed)
	instead, ok := gcloudOnly[name]
	if !ok {
		return nil
	}
	dashes := "--"
	if len(name) == 1 {
		dashes = "-"
	}
	return usagef("%s%s is gcloud's, not gkessh's: %s", dashes, name, instead)
}
