//go:build unix

package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
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

// TestGcloudStartIAPTunnel: gcloud's own IAP client (start-iap-tunnel,
// the ProxyCommand of gcloud compute ssh --tunnel-through-iap) logs in
// through the emulator's relay over wss:// (gce-emulator --tls, gcloud
// trusting the emulator's CA through the CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE
// its lines set: no TLS front) and moves 1 MiB up, then 1 MiB down, byte
// for byte. The relay is written apart from gkessh's client; this is the
// check that it speaks the protocol as Google's client expects.
//
// Not both ways at once: gcloud 528 then stalls by itself, through any
// relay, in about half the runs here: its sending thread asks for an ACK by
// putting a message into its own send queue, and blocks for good when the
// queue is full (iap_tunnel_websocket.py, _SendQueuedData calling
// _MaybeSendAck; seen in a Python thread dump, with every socket's queues
// empty).
func TestGcloudStartIAPTunnel(t *testing.T) {
	need(t, "gcloud", "ssh")
	adc := filepath.Join(t.TempDir(), "adc.json")
	// keys ensure does not wait for the guest agent; gcloud would race it.
	w := startEmulator(t, "--nodes", "1", "--adc-file", adc, "--tls", "--propagation-delay", "0s")
	n := w.nodes()[0]
	user := loginUser(t)
	// gkessh trusts the emulator's CA through core/custom_ca_certs_file,
	// as gcloud does: the env lines set it.
	w.env = gcloudTLSEnv(t, w)
	mustGcloud(t, w.env, "auth", "activate-service-account", "--key-file", adc)
	w.run("gkessh", "keys", "ensure", "--user", user)

	up := make([]byte, 1<<20)
	rand.Read(up)
	down := filepath.Join(w.home, "down") // the nodes share this file system
	writeRandom(t, down, 1<<20)
	want, err := os.ReadFile(down)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(up)
	want = append([]byte(hex.EncodeToString(sum[:])+"  -\n"), want...)
	out, stderr, err := sshThroughGcloud(w, n, user, w.getenv("GKESSH_IAP_ENDPOINT"), up, "sha256sum; cat "+down)
	if err != nil || !bytes.Equal(out, want) {
		t.Fatalf("ssh through gcloud start-iap-tunnel: %v; %d of %d bytes back (%.80q); stderr:\n%s\nemulator: %+v\ngcloud's log:\n%s",
			err, len(out), len(want), out, stderr, w.stats(), gcloudLog(t, filepath.Join(w.home, "gcloud")))
	}
	if by := w.stats().TunnelsBy; by["emulator-adc@demo-project.iam.gserviceaccount.com"] == 0 {
		t.Errorf("no tunnel counted for gcloud's account: %v", by)
	}
}

// TestGcloudCertificateAccess: under certificate-based access
// (gce-emulator --mtls), gcloud with no client certificate is refused a
// tunnel as IAP refuses it (close 4033 after the upgrade, which gcloud
// reports as "4033: 'not authorized'"), and gcloud presenting the
// certificate the emulator issued (context_aware/use_client_certificate,
// the Endpoint Verification helper's cert_provider_command) gets one on
// the mTLS port; the emulator counts the certificate.
func TestGcloudCertificateAccess(t *testing.T) {
	need(t, "gcloud", "ssh", "openssl")
	adc := filepath.Join(t.TempDir(), "adc.json")
	w := startEmulator(t, "--nodes", "1", "--adc-file", adc, "--mtls")
	n := w.nodes()[0]
	user := loginUser(t)
	w.env = gcloudTLSEnv(t, w)
	mustGcloud(t, w.env, "auth", "activate-service-account", "--key-file", adc)
	// The key goes in through the control API: under --mtls only gcloud
	// is to reach the guarded ports here.
	key := filepath.Join(w.home, ".ssh", "google_compute_engine")
	if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
		t.Fatal(err)
	}
	w.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	w.control("POST", "/control/project", map[string]any{"metadata": map[string]string{"ssh-keys": user + ":" + strings.TrimSpace(string(pub))}}, nil)

	out, stderr, err := sshThroughGcloud(w, n, user, w.getenv("GKESSH_IAP_ENDPOINT"), nil, "echo", "in")
	if err == nil || !strings.Contains(stderr, "4033") || !strings.Contains(stderr, "not authorized") {
		t.Errorf("gcloud without a client certificate: %v, %q; stderr:\n%s", err, out, stderr)
	}

	// What Endpoint Verification's helper does: print the certificate and
	// key, and with --with_passphrase the key encrypted and its passphrase
	// (google-auth's _mtls_helper asks for that form for gcloud's websocket).
	provider := filepath.Join(w.home, "cert-provider")
	script := fmt.Sprintf(`#!/bin/sh
cat %[1]q
if [ "$1" = --with_passphrase ]; then
	openssl pkcs8 -topk8 -v2 aes-256-cbc -passout pass:emu -in %[2]q
	printf -- '-----BEGIN PASSPHRASE-----\nemu\n-----END PASSPHRASE-----\n'
else
	cat %[2]q
fi
`, w.getenv("GCE_EMULATOR_CLIENT_CERT"), w.getenv("GCE_EMULATOR_CLIENT_KEY"))
	if err := os.WriteFile(provider, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	metadata := filepath.Join(w.home, "context_aware_metadata.json")
	cmd, _ := json.Marshal(map[string][]string{"cert_provider_command": {provider}})
	if err := os.WriteFile(metadata, cmd, 0o600); err != nil {
		t.Fatal(err)
	}
	w.env = append(w.env, "CLOUDSDK_CONTEXT_AWARE_USE_CLIENT_CERTIFICATE=true", "CLOUDSDK_CONTEXT_AWARE_AUTO_DISCOVERY_FILE_PATH="+metadata)
	relay := "wss://" + strings.TrimPrefix(w.getenv("GCE_EMULATOR_MTLS_URL"), "https://")
	out, stderr, err = sshThroughGcloud(w, n, user, relay, nil, "echo", "in")
	if err != nil || strings.TrimSpace(string(out)) != "in" {
		t.Fatalf("gcloud with the client certificate: %v, %q; stderr:\n%s\ngcloud's log:\n%s", err, out, stderr, gcloudLog(t, filepath.Join(w.home, "gcloud")))
	}
	if got := w.stats().ClientCerts["gce-emulator test device"]; got == 0 {
		t.Errorf("the emulator saw no client certificate: %v", w.stats().ClientCerts)
	}
}

// gcloudTLSEnv is gcloudEnv for an emulator under --tls. The requests
// library gcloud bundles takes REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE from
// the environment over gcloud's own core/custom_ca_certs_file (which the
// emulator's lines set), so they are emptied: a machine that sets them
// would otherwise make gcloud distrust the emulator.
func gcloudTLSEnv(t *testing.T, w *world) []string {
	return append(gcloudEnv(t, w, filepath.Join(w.home, "gcloud")), "REQUESTS_CA_BUNDLE=", "CURL_CA_BUNDLE=")
}

// sshThroughGcloud runs ssh to node n with gcloud start-iap-tunnel as the
// ProxyCommand, through the relay at relay (gcloud's
// --iap-tunnel-url-override), with stdin, and returns its output.
func sshThroughGcloud(w *world, n emulator.NodeInfo, user, relay string, stdin []byte, command ...string) ([]byte, string, error) {
	proxy := fmt.Sprintf("gcloud compute start-iap-tunnel %s %%p --listen-on-stdin --zone %s --verbosity=warning"+
		" --iap-tunnel-url-override=%s", n.Name, n.Zone, relay)
	cmd := w.command("ssh", append([]string{"-F", "/dev/null", "-i", filepath.Join(w.home, ".ssh", "google_compute_engine"),
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ProxyCommand " + proxy, user + "@" + n.Name}, command...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := runBounded(cmd, 60*time.Second)
	return out, stderr.String(), err
}

// gcloudLog returns the end of the newest log gcloud wrote under config.
func gcloudLog(t *testing.T, config string) string {
	logs, _ := filepath.Glob(filepath.Join(config, "logs", "*", "*.log"))
	if len(logs) == 0 {
		return "(none)"
	}
	slices.Sort(logs) // named by date and time
	b, err := os.ReadFile(logs[len(logs)-1])
	if err != nil {
		return err.Error()
	}
	return string(b[max(0, len(b)-8000):])
}

// runBounded runs cmd and returns its stdout, killing it after limit.
func runBounded(cmd *exec.Cmd, limit time.Duration) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout = &out
	// A ProxyCommand left behind keeps the output pipes open.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		return out.Bytes(), fmt.Errorf("still running after %v", limit)
	}
}
