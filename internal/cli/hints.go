package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/auth"
	"github.com/gkessh/gkessh/internal/fleet"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/metakeys"
	"github.com/gkessh/gkessh/internal/transport"
	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/knownhosts"
	"github.com/gkessh/gkessh/sshclient"
	"github.com/gkessh/gkessh/tunnel"
)

// hint says what to do about err in terms of gkessh's own flags and
// commands, or "" when there is nothing to add. It is the one place that
// turns the libraries' typed errors into fix-it text; report calls it.
func hint(err error) string {
	var (
		noInst    *gce.NoInstanceError
		ambiguous *gce.AmbiguousZoneError
		blocked   *metakeys.ProjectKeysBlockedError
		denied    *metakeys.ProjectWriteDeniedError
		tooBig    *metakeys.TooBigError
		keyFile   *keys.KeyFileError
		refused   *sshclient.KeyRefusedError
		plain     *plainRefusedError
		hostKey   *knownhosts.HostKeyError
		changed   *knownhosts.HostKeyChangedError
		posix     *osLoginUserError
		extras    *access.ExtrasError
		imp       *auth.ImpersonationError
		stalled   *gce.StalledError
		proxy     *transport.ProxyError
		cert      *transport.ClientCertError
		authority x509.UnknownAuthorityError
		closed    *tunnel.CloseError
		token     *oauth2.RetrieveError
		noMatch   *fleet.NoMatchError
		unreach   *transport.UnreachableError
		tokenFile *auth.TokenFileError
	)
	switch {
	case errors.As(err, &unreach) && unreach.Endpoint.Source != "" && unreach.NoSuchHost():
		return "correct the host name in " + unreach.Endpoint.Source
	case errors.As(err, &unreach) && unreach.Endpoint.Source != "":
		return "start the server it names (the emulator: eval \"$(gce-emulator --background)\"), or correct " + unreach.Endpoint.Source
	case errors.As(err, &unreach):
		return "check the network: DNS, a firewall, or a proxy on the way (gcloud config list proxy, HTTPS_PROXY)"
	case errors.As(err, &tokenFile) && tokenFile.Origin != "":
		return "point " + tokenFile.Origin + " at a file holding an access token, or leave it unset to use gcloud's login or Application Default Credentials"
	case errors.As(err, &proxy) && proxy.AuthRequired:
		return "the proxy wants credentials: gcloud config set proxy/username and proxy/password, or USER:PASS@ in HTTPS_PROXY's URL (http://USER:PASS@HOST:PORT, socks5h://USER:PASS@HOST:PORT)"
	case errors.As(err, &proxy) && proxy.Refusal != "":
		return "ask the proxy's administrator to allow it, or skip the proxy for that host (NO_PROXY, for HTTPS_PROXY)"
	case errors.As(err, &proxy):
		return "check that the proxy is up, and the settings naming it: gcloud config list proxy, HTTPS_PROXY"
	case errors.As(err, &cert) && cert.Expired():
		return "renew it (Endpoint Verification, or whatever issues your device certificate), or turn certificate-based access off: gcloud config set context_aware/use_client_certificate false"
	case errors.As(err, &cert):
		return "see gcloud topic client-certificate, or turn certificate-based access off: gcloud config set context_aware/use_client_certificate false"
	case transport.CertificateRequired(err):
		return "the server asks for a client certificate (certificate-based access): gcloud config set context_aware/use_client_certificate true"
	case gce.IsPolicyDenied(err),
		errors.As(err, &closed) && closed.Code == tunnel.CodeNotAuthorized,
		errors.As(err, &token) && token.ErrorCode == "access_denied" && token.ErrorDescription == "Account restricted":
		return certificateAccessHint
	case errors.As(err, &authority):
		return "if a proxy inspects TLS, name its CA file in gcloud's core/custom_ca_certs_file"
	case errors.As(err, &imp) && imp.Code == http.StatusForbidden:
		return "or stop impersonating (--impersonate-service-account, CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, gcloud's auth/impersonate_service_account)"
	case errors.As(err, &noMatch):
		return noMatchHint(noMatch)
	case errors.Is(err, auth.ErrNoCredentials):
		return "or pass --access-token-file"
	case errors.Is(err, gce.ErrNoProject):
		return "pass --project or set CLOUDSDK_CORE_PROJECT"
	case errors.As(err, &noInst) && len(noInst.Near) > 0:
		return "did you mean " + strings.Join(noInst.Near, " or ") + "?"
	case errors.As(err, &noInst):
		return "check the name, or pass --project"
	case errors.As(err, &ambiguous):
		return "pass --zone"
	case errors.As(err, &stalled):
		return stalledHint(stalled.URL)
	case gce.IsNotFound(err):
		return "check the name, --zone and --project"
	case errors.Is(err, keys.ErrNoUser):
		return "pass --user"
	case errors.Is(err, metakeys.ErrInstanceScopeNeedsInstance):
		return "--scope instance needs a NODE"
	case errors.As(err, &blocked):
		return "use --scope instance"
	case errors.As(err, &denied):
		return "or write the key to one node's metadata with --scope instance, which needs " + gce.PermSetInstanceMetadata
	case errors.As(err, &extras):
		return "use gcloud compute ssh, or turn them off for this instance"
	case errors.As(err, &posix):
		return fmt.Sprintf("log in as %s (ssh %s@%s), or run 'gkessh config-ssh', which writes User %s for OS Login nodes", posix.Posix, posix.Posix, posix.Node, posix.Posix)
	case errors.As(err, &tooBig):
		return "'gkessh keys list --audit' shows them, 'gkessh keys prune --all-expired' removes the expired ones"
	case errors.As(err, &keyFile) && keyFile.Broken:
		return "pass --force-key-file-overwrite to replace them with a new pair, or --key-file FILE"
	case errors.As(err, &keyFile) && errors.Is(keyFile.Err, fs.ErrNotExist):
		return "run 'gkessh keys ensure' to make one, or pass --key-file"
	case errors.As(err, &keyFile):
		return "pass --key-file FILE"
	case errors.As(err, &plain):
		return "--plain adds no key: load yours into ssh-agent or name it with --key-file, or drop --plain and gkessh adds it where the node takes keys"
	case errors.As(err, &refused) && refused.Waited > 0:
		return "for a node that blocks project keys, retry with --scope instance; for a slow one, pass a longer --propagation-timeout"
	case errors.As(err, &changed):
		return "if the change is expected, run again with --" + "accept-changed-host-keys" + ", which replaces the recorded keys of " + changed.Alias + " with the published ones"
	case errors.As(err, &hostKey) && hostKey.Published:
		return "if the change is expected, run again with --" + "accept-changed-host-keys" + " to record it in place of the old keys"
	case errors.As(err, &hostKey) && len(hostKey.Want) == 0 && !hostKey.Revoked:
		return "with --strict-host-key-checking=yes add its key first, or use --strict-host-key-checking=accept-new"
	}
	return ""
}

// certificateAccessHint is for Google refusing a device: the API's
// organization policy 403, the relay's 4033 and the token endpoint's
// "access_denied"/"Account restricted", which gcloud reports as "Access
// was blocked by Context Aware Access" (core/context_aware.py).
const certificateAccessHint = "if your organization requires certificate-based access (Context Aware Access), " +
	"gcloud config set context_aware/use_client_certificate true, with a device certificate it accepts (gcloud topic client-certificate)"

// noMatchHint says what the project has, for a selection that matched no
// RUNNING node.
func noMatchHint(e *fleet.NoMatchError) string {
	in := "the project"
	if e.Selector.Zone != "" {
		in = "zone " + e.Selector.Zone
	}
	switch {
	case e.Running == 0 && e.Selector.Zone != "":
		return in + " has no RUNNING instance: check --zone and --project"
	case e.Running == 0:
		return in + " has no RUNNING instance: check --project"
	case len(e.Clusters) == 0:
		return fmt.Sprintf("%s has %s, none a GKE node: check --filter, --cluster and --pool", in, plural(e.Running, "RUNNING instance"))
	}
	var cs []string
	for _, name := range slices.Sorted(maps.Keys(e.Clusters)) {
		switch pools := e.Clusters[name]; len(pools) {
		case 0:
			cs = append(cs, name)
		case 1:
			cs = append(cs, name+" (pool "+pools[0]+")")
		default:
			cs = append(cs, name+" (pools "+strings.Join(pools, ", ")+")")
		}
	}
	return fmt.Sprintf("%s has %s; its GKE clusters: %s", in, plural(e.Running, "RUNNING instance"), strings.Join(cs, "; "))
}

// withHint is err's message followed by its hint, if any. An endpoint
// that cannot be reached is the whole message: which call found it so
// adds only a URL and a socket error to read past.
func withHint(err error) string {
	msg := err.Error()
	var unreach *transport.UnreachableError
	if errors.As(err, &unreach) {
		msg = unreach.Error()
	}
	if h := hint(err); h != "" {
		return msg + ": " + h
	}
	return msg
}

// stalledHint names the setting that points at the API that stalled:
// Compute's is gkessh's flag; the others (OS Login, IAM...) come from
// gcloud's api_endpoint_overrides.
func stalledHint(rawURL string) string {
	where := "--compute-endpoint"
	if !strings.Contains(rawURL, "/compute/v1/") {
		where = "gcloud's api_endpoint_overrides setting for that API"
		if u, err := url.Parse(rawURL); err == nil {
			if api, ok := strings.CutSuffix(u.Hostname(), ".googleapis.com"); ok {
				where = "gcloud's api_endpoint_overrides/" + api
			}
		}
	}
	return "the API took the connection and sent no reply: check the network, a proxy on the way, or " + where
}

// notRunning is the one message for a node that is not RUNNING, for the
// login and doctor alike.
func notRunning(n access.Node, status string) error {
	return fmt.Errorf("instance %s is %s, not RUNNING: start it (gcloud compute instances start %s --zone %s) and retry", n, status, n.Name, n.Zone)
}
