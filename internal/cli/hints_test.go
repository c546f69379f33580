package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/oauth2"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/auth"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/metakeys"
	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/internal/transport"
	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/knownhosts"
	"github.com/gkessh/gkessh/sshclient"
	"github.com/gkessh/gkessh/tunnel"
)

// TestHints: the libraries' typed errors name no gkessh flag, and report
// adds the fix-it text, wrapped or not.
func TestHints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{auth.ErrNoCredentials, "--access-token-file"},
		{gce.ErrNoProject, "pass --project"},
		{&gce.NoInstanceError{Name: "n", Project: "p"}, "check the name, or pass --project"},
		{&gce.NoInstanceError{Name: "vm-3", Project: "p", Near: []string{"vm-1", "vm-2"}}, "did you mean vm-1 or vm-2?"},
		{&gce.AmbiguousZoneError{Name: "n", Zones: []string{"a", "b"}}, "pass --zone"},
		{&gce.APIError{Code: 404}, "check the name, --zone and --project"},
		{&gce.StalledError{Method: "GET", URL: "https://compute.googleapis.com/compute/v1/projects/p", After: time.Minute}, "a proxy on the way, or --compute-endpoint"},
		{&gce.StalledError{Method: "GET", URL: "https://oslogin.googleapis.com/v1/users/u/loginProfile", After: time.Minute}, "a proxy on the way, or gcloud's api_endpoint_overrides/oslogin"},
		{&gce.StalledError{Method: "GET", URL: "http://127.0.0.1:1/v1/users/u/loginProfile", After: time.Minute}, "or gcloud's api_endpoint_overrides setting for that API"},
		{keys.ErrNoUser, "pass --user"},
		{metakeys.ErrInstanceScopeNeedsInstance, "needs a NODE"},
		{&metakeys.ProjectKeysBlockedError{Instance: "n"}, "use --scope instance"},
		{&metakeys.ProjectWriteDeniedError{Err: errors.New("403")}, "--scope instance"},
		{&metakeys.TooBigError{Key: "ssh-keys", Size: 300000, Limit: 262144}, "gkessh keys prune --all-expired"},
		{&keys.KeyFileError{Path: "k", Problem: "no private key at k", Err: fs.ErrNotExist}, "run 'gkessh keys ensure'"},
		{&keys.KeyFileError{Path: "k", Problem: "k is a directory"}, "pass --key-file FILE"},
		{&sshclient.KeyRefusedError{User: "u", Name: "n", Waited: time.Minute}, "--propagation-timeout"},
		{&knownhosts.HostKeyError{Alias: "a", File: "f", Got: testkey.Public(t)}, "--strict-host-key-checking=accept-new"},
		{&access.ExtrasError{Extras: []string{"security keys (enable-oslogin-sk)"}}, "use gcloud compute ssh"},
		{&osLoginUserError{Node: "vm", User: "root", Posix: "alice_example_com"}, "log in as alice_example_com (ssh alice_example_com@vm)"},
		{&transport.ProxyError{Proxy: "http://p:3128", Origin: "HTTPS_PROXY", Target: "t:443", Refusal: "HTTP 407", AuthRequired: true}, "gcloud config set proxy/username and proxy/password"},
		{&transport.ProxyError{Proxy: "http://p:3128", Origin: "HTTPS_PROXY", Target: "t:443", Refusal: "HTTP 403 Forbidden"}, "ask the proxy's administrator"},
		{&transport.ProxyError{Proxy: "http://p:3128", Origin: "HTTPS_PROXY", Target: "t:443", Err: errors.New("connection refused")}, "check that the proxy is up"},
		{&transport.ClientCertError{Setting: "s", Source: "f", Subject: "CN=x", NotAfter: time.Unix(1, 0)}, "renew it"},
		{&transport.ClientCertError{Setting: "s", Source: "no file"}, "gcloud topic client-certificate"},
		{&net.OpError{Op: "remote error", Err: certificateRequired{}}, "context_aware/use_client_certificate true"},
		{x509.UnknownAuthorityError{}, "core/custom_ca_certs_file"},
		// Google refusing a device without its certificate, at each door.
		{&gce.APIError{Code: 403, Message: "Request is prohibited by organization's policy. vpcServiceControlsUniqueIdentifier: X"}, certificateAccessHint},
		{&tunnel.CloseError{Code: tunnel.CodeNotAuthorized, Reason: "not authorized", Port: 22}, certificateAccessHint},
		{&oauth2.RetrieveError{ErrorCode: "access_denied", ErrorDescription: "Account restricted"}, certificateAccessHint},
		{&transport.UnreachableError{What: "compute API", Endpoint: transport.Endpoint{URL: "http://x.invalid/compute/v1/", Source: "GKESSH_COMPUTE_ENDPOINT"},
			Err: &net.OpError{Op: "dial", Err: &net.DNSError{Name: "x.invalid", IsNotFound: true}}}, "correct the host name in GKESSH_COMPUTE_ENDPOINT"},
		{&transport.UnreachableError{What: "compute API", Endpoint: transport.Endpoint{URL: "https://compute.googleapis.com/compute/v1/"},
			Err: &net.OpError{Op: "dial", Err: errors.New("connect: network is unreachable")}}, "check the network"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%T", tt.err), func(t *testing.T) {
			if strings.Contains(tt.err.Error(), "--") {
				t.Errorf("library error %q names a flag", tt.err)
			}
			for _, err := range []error{tt.err, fmt.Errorf("context: %w", tt.err), exitError{code: exitFailure, err: tt.err}} {
				var out strings.Builder
				report(&out, err, false)
				if !strings.Contains(out.String(), tt.want) {
					t.Errorf("report(%v) = %q, want it to say %q", err, out.String(), tt.want)
				}
			}
		})
	}
	var out strings.Builder
	report(&out, errors.New("plain"), false)
	if out.String() != "gkessh: plain\n" {
		t.Errorf("report of a plain error = %q", out.String())
	}
}

// certificateRequired reads as crypto/tls's unexported alert does.
type certificateRequired struct{}

func (certificateRequired) Error() string { return "tls: certificate required" }

// TestPropagationTimeoutMessage: the give-up line names the causes once
// and the fixes once (it used to advise a longer wait twice).
func TestPropagationTimeoutMessage(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	report(&out, fmt.Errorf("wrap: %w", &sshclient.KeyRefusedError{User: "root", Name: "vm", Keys: "SHA256:abc", Waited: 2 * time.Minute}), true)
	const want = "gkessh: wrap: root@vm still refuses key SHA256:abc after 2m0s. Likely causes: the guest agent is not running on the node; " +
		"OS Login is enabled (enable-oslogin=TRUE), so metadata keys are ignored; the instance sets block-project-ssh-keys=TRUE " +
		"and the key went to project metadata; or the node takes longer than that: " +
		"for a node that blocks project keys, retry with --scope instance; for a slow one, pass a longer --propagation-timeout\n"
	if out.String() != want {
		t.Errorf("report =\n%q\nwant\n%q", out.String(), want)
	}
}

// TestChangedHostKeyReport: a changed host key is told a fact a line, the
// keys one a line, the fix last and capitalised; errors that are not a
// changed key have no report and keep their one line.
func TestChangedHostKeyReport(t *testing.T) {
	old, presented, other := testkey.Fixed(t, 1), testkey.Fixed(t, 2), testkey.Fixed(t, 3)
	line := func(k ssh.PublicKey) string { return "\n  " + k.Type() + " " + ssh.FingerprintSHA256(k) + "\n" }
	const file = "/home/u/.ssh/google_compute_known_hosts"
	tests := []struct {
		name string
		err  error
		want []string // in order
	}{
		{"presented key not published", fmt.Errorf("ssh: handshake failed: %w", &knownhosts.HostKeyError{Node: "n1", Alias: "compute.7", File: file, Got: presented, Want: []ssh.PublicKey{old}}),
			[]string{"gkessh: host key of n1 (compute.7) has CHANGED.\nThe server presented:", line(presented), "but " + file + " records:", line(old),
				"Its guest does not publish the presented key.", "\n  ssh-keygen -R compute.7 -f " + file + "\n"}},
		{"presented key published", &knownhosts.HostKeyError{Alias: "compute.7", File: file, Got: presented, Want: []ssh.PublicKey{old}, Published: true},
			[]string{"gkessh: host key of compute.7 has CHANGED.", line(presented), line(old), "Its guest publishes the presented key.\nIf the change is expected, run again with --accept-changed-host-keys to record it in place of the old keys.\n"}},
		{"guest publishes other keys", &knownhosts.HostKeyChangedError{Node: "n1", Alias: "compute.7", File: file, Old: []ssh.PublicKey{old}, New: []ssh.PublicKey{presented, other}, Source: "its guest attributes"},
			[]string{"gkessh: host keys of n1 (compute.7) have CHANGED.\n" + file + " records:", line(old), "but its guest attributes now hold:", line(presented)[:len(line(presented))-1] + line(other),
				"Either the node was rebuilt or its keys regenerated, or someone is tampering with it.\nIf the change is expected, run again with --accept-changed-host-keys, which replaces the recorded keys of compute.7 with the published ones.\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := changedHostKeyReport(tt.err)
			if !ok {
				t.Fatalf("no report for %v", tt.err)
			}
			rest := got
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("report lacks %q (in order):\n%s", w, got)
				}
				rest = rest[i+len(w):]
			}
			if rest != "" {
				t.Errorf("report ends with %q after the fix:\n%s", rest, got)
			}
		})
	}
	for _, err := range []error{
		errors.New("other"),
		&knownhosts.HostKeyError{Alias: "compute.7", File: file, Got: presented},                                            // unknown, nothing published
		&knownhosts.HostKeyError{Alias: "compute.7", File: file, Got: presented, Want: []ssh.PublicKey{old}, Revoked: true}, // revoked
	} {
		if got, ok := changedHostKeyReport(err); ok {
			t.Errorf("%v: a changed-key report:\n%s", err, got)
		}
	}
}
