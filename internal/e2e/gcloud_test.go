//go:build unix

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// gcloudProxyCommand is the ProxyCommand that `gcloud compute ssh
// gke-cluster-default-pool-3e89aeb0-b47k --zone us-west1-a
// --tunnel-through-iap --dry-run` printed (gcloud 5xx run against
// gce-emulator), verbatim.
const gcloudProxyCommand = `python3 -S /usr/bin/../lib/google-cloud-sdk/lib/gcloud.py compute start-iap-tunnel 'gke-cluster-default-pool-3e89aeb0-b47k' '%p' --listen-on-stdin --project=demo-project --zone=us-west1-a --verbosity=warning`

// TestGcloudProxyCommandVerbatim: gcloud's ProxyCommand line works with
// its command alone changed to gkessh proxy, through real OpenSSH.
func TestGcloudProxyCommandVerbatim(t *testing.T) {
	need(t, "ssh")
	w := startEmulator(t, "--sshd", "openssh", "--nodes", "1", "--propagation-delay", "300ms")
	cmd, args, ok := strings.Cut(gcloudProxyCommand, " compute start-iap-tunnel ")
	if !ok || !strings.HasSuffix(cmd, "gcloud.py") {
		t.Fatalf("not a gcloud start-iap-tunnel line: %s", gcloudProxyCommand)
	}
	proxy := "gkessh proxy " + args
	user := loginUser(t)
	key := filepath.Join(w.home, ".ssh", "google_compute_engine")
	// gcloud's own dry run creates the key before ssh starts; so does this.
	w.run("gkessh", "keys", "ensure", "--user", user)
	out := w.output("ssh", "-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile="+filepath.Join(w.home, "known_hosts"),
		"-o", "ProxyCommand "+proxy, "-o", "ProxyUseFdpass=no", user+"@compute.1", "echo", "via-gcloud-line")
	if strings.TrimSpace(out) != "via-gcloud-line" {
		t.Fatalf("ssh: %q", out)
	}
}
