//go:build unix

package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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
// through the emulator's relay and moves 1 MiB each way at once, byte for
// byte. The relay is written apart from gkessh's client; this is the check
// that it speaks the protocol as Google's client expects. (A relay that
// stops reading the websocket while the node is slow stalls gcloud in a
// two-way transfer: 160 KiB of 1 MiB back, then nothing for a minute.)
func TestGcloudStartIAPTunnel(t *testing.T) {
	need(t, "gcloud", "ssh", "socat")
	home := t.TempDir()
	adc := filepath.Join(home, "adc.json")
	w := startEmulator(t, "--nodes", "1", "--adc-file", adc)
	n := w.nodes()[0]
	user := loginUser(t)
	relay := tlsFront(t, strings.TrimPrefix(w.base, "http://"))
	w.env = append(w.env, "CLOUDSDK_CONFIG="+filepath.Join(w.home, "gcloud"), "CLOUDSDK_PYTHON=python3",
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1", "CLOUDSDK_AUTH_TOKEN_HOST="+w.base+"/token")
	w.run("gcloud", "auth", "activate-service-account", "--key-file", adc)
	w.run("gkessh", "keys", "ensure", "--user", user)

	proxy := fmt.Sprintf("gcloud compute start-iap-tunnel %s %%p --listen-on-stdin --zone %s --verbosity=warning"+
		" --iap-tunnel-url-override=wss://%s --iap-tunnel-insecure-disable-websocket-cert-check", n.Name, n.Zone, relay)
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	cmd := w.command("ssh", "-F", "/dev/null", "-i", filepath.Join(w.home, ".ssh", "google_compute_engine"),
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ProxyCommand "+proxy, user+"@"+n.Name, "cat")
	cmd.Stdin = bytes.NewReader(payload)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := runBounded(cmd, 60*time.Second)
	if err != nil || !bytes.Equal(out, payload) {
		t.Fatalf("ssh through gcloud start-iap-tunnel: %v; %d of %d bytes back; stderr:\n%s\nemulator: %+v\ngcloud's log:\n%s",
			err, len(out), len(payload), stderr.String(), w.stats(), gcloudLog(t, filepath.Join(w.home, "gcloud")))
	}
	if by := w.stats().TunnelsBy; by["emulator-adc@demo-project.iam.gserviceaccount.com"] == 0 {
		t.Errorf("no tunnel counted for gcloud's account: %v", by)
	}
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

// tlsFront serves TLS with a throw-away certificate on a local port and
// forwards it to addr (socat), for gcloud, whose websocket speaks only
// wss://; it returns the port's address.
func tlsFront(t *testing.T, addr string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(t.TempDir(), "front.pem")
	pemBytes := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := os.WriteFile(pemFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(front)
	cmd := exec.Command("socat", "openssl-listen:"+port+",bind=127.0.0.1,reuseaddr,fork,verify=0,cert="+pemFile, "tcp:"+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", front); err == nil {
			c.Close()
			return front
		}
		if time.Now().After(deadline) {
			t.Fatalf("socat did not listen on %s", front)
		}
	}
}
