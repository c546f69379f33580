//go:build unix

package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTLSLines: with --mtls the lines point every URL at https:// and
// wss://, name the CA file for gcloud (its core/custom_ca_certs_file) and
// for others, and the mTLS port with a client certificate and key it
// accepts; --stop unsets each of them. A client trusting the CA file
// reaches the main port's control API, and with the certificate the
// Compute API on the mTLS port, which refuses it without.
func TestTLSLines(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "emu.env")
	em := emulatorCommand(t, "--nodes", "1", "--mtls", "--env-file", envFile)
	em.Stderr = os.Stderr
	if err := em.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { em.Wait(); close(exited) }()
	var stateDir string
	t.Cleanup(func() {
		// Stopped as a user stops it, so that it removes its directory,
		// which holds the device CA's client key.
		em.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			em.Process.Kill()
			<-exited
			t.Error("gce-emulator did not stop on SIGTERM")
		}
		if _, err := os.Stat(stateDir); stateDir != "" && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("gce-emulator left %s behind (%v)", stateDir, err)
		}
	})
	var env []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if env, err = os.ReadFile(envFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no env file after 30s")
		}
	}
	vars := exports(t, string(env))
	stateDir = filepath.Dir(vars["GCE_EMULATOR_CLIENT_KEY"])
	for name, v := range vars {
		if !slices.Contains(exportedNames, name) {
			t.Errorf("%s is exported but --stop would not unset it", name)
		}
		if strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "ws://") {
			t.Errorf("%s=%s under --mtls", name, v)
		}
	}
	if !strings.HasPrefix(vars["GKESSH_IAP_ENDPOINT"], "wss://") || vars["CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE"] != vars["GCE_EMULATOR_CA_FILE"] {
		t.Errorf("relay %q, gcloud's CA file %q, the CA file %q", vars["GKESSH_IAP_ENDPOINT"], vars["CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE"], vars["GCE_EMULATOR_CA_FILE"])
	}
	ca, err := os.ReadFile(vars["GCE_EMULATOR_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("no certificate in %s", vars["GCE_EMULATOR_CA_FILE"])
	}
	cert, err := tls.LoadX509KeyPair(vars["GCE_EMULATOR_CLIENT_CERT"], vars["GCE_EMULATOR_CLIENT_KEY"])
	if err != nil {
		t.Fatal(err)
	}
	get := func(url, auth string, certs []tls.Certificate) int {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", auth)
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	base := strings.TrimSuffix(vars["GKESSH_COMPUTE_ENDPOINT"], "/compute/v1/")
	if code := get(base+"/control/nodes", "Bearer "+vars["GCE_EMULATOR_CONTROL_SECRET"], nil); code != 200 {
		t.Errorf("control API over HTTPS: %d", code)
	}
	token, err := os.ReadFile(vars["GKESSH_ACCESS_TOKEN_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	compute := vars["GCE_EMULATOR_MTLS_URL"] + "/compute/v1/projects/" + vars["CLOUDSDK_CORE_PROJECT"] + "/aggregated/instances"
	auth := "Bearer " + strings.TrimSpace(string(token))
	if code := get(compute, auth, []tls.Certificate{cert}); code != 200 {
		t.Errorf("Compute API on the mTLS port with the client certificate: %d", code)
	}
	if code := get(compute, auth, nil); code != 403 {
		t.Errorf("Compute API on the mTLS port without a certificate: %d, want 403", code)
	}
}
