//go:build unix

package cli

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/keys"
)

// TestGcloudKeyExpiryFlags: gcloud's --ssh-key-expire-after forms and
// --ssh-key-expiration set the expiry of the metadata line. A lifetime is
// counted from the write, which is between the run's start and end on the
// same clock, so the line expires within those bounds plus the lifetime
// (less the second the line's format drops), however loaded the machine;
// --ssh-key-expiration is a time, which the line gets exactly (to the
// second), however long the run took to write it.
func TestGcloudKeyExpiryFlags(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	n := e.node(0)
	// A fraction of a second short of a whole one: a line written a
	// moment after the time was read and given the lifetime left at
	// reading would expire a second later once truncated.
	at := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second).Add(time.Second - time.Microsecond)
	for _, tt := range []struct {
		args []string
		want time.Duration // 0: at at's second
	}{
		{[]string{"--ssh-key-expire-after", "1d12h"}, 36 * time.Hour},
		{[]string{"--ssh-key-expire-after=P1D"}, 24 * time.Hour},
		{[]string{"--ssh-key-expire-after", "90"}, 90 * time.Second},
		{[]string{"--ssh-key-expiration", at.Format(time.RFC3339Nano)}, 0},
	} {
		// A fresh key each time, so each run writes its own line.
		args := append([]string{"--key-file", t.TempDir() + "/k"}, tt.args...)
		start := time.Now()
		if _, stderr, code := e.run(append(args, n.Name, "--", "true")...); code != 0 {
			t.Fatalf("%v: exit %d:\n%s", tt.args, code, stderr)
		}
		end := time.Now()
		lines := keys.ParseLines(e.projectItems()["ssh-keys"])
		got := lines[len(lines)-1].ExpireOn
		if tt.want == 0 {
			if want := at.Truncate(time.Second); !got.Equal(want) {
				t.Errorf("%v: key expires %v, want %v", tt.args, got, want)
			}
			continue
		}
		if lo, hi := start.Add(tt.want).Truncate(time.Second), end.Add(tt.want); got.Before(lo) || got.After(hi) {
			t.Errorf("%v: key expires %v, want between %v and %v (the run's start and end plus %v)", tt.args, got, lo, hi, tt.want)
		}
	}
	for _, bad := range [][]string{
		{"--ssh-key-expire-after", "500ms"},
		{"--ssh-key-expire-after", "1h30"},
		{"--ssh-key-expiration", "2001-01-01T00:00:00Z"},
	} {
		if _, stderr, code := e.run(append(bad, n.Name, "--", "true")...); code != 255 || !strings.Contains(stderr, "expir") {
			t.Errorf("%v: exit %d, stderr %q", bad, code, stderr)
		}
	}
}

// TestGcloudStrictAsk: --strict-host-key-checking=ask is taken; gkessh
// cannot ask, so it logs in where the guest published the host keys and
// refuses trust on first use, as OpenSSH does without a terminal.
func TestGcloudStrictAsk(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 2)
	if _, stderr, code := e.run("--strict-host-key-checking=ask", e.node(0).Name, "--", "true"); code != 0 {
		t.Fatalf("published keys: exit %d:\n%s", code, stderr)
	}
	off := "FALSE"
	if err := e.srv.SetInstanceMetadata(e.node(1).Name, map[string]*string{"enable-guest-attributes": &off}); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := e.run("--strict-host-key-checking=ask", e.node(1).Name, "--", "true"); code != 255 {
		t.Errorf("unpublished keys: exit %d, want a refusal:\n%s", code, stderr)
	}
}

// TestGcloudIAPFlags: --iap-tunnel-url-override points at the relay, and
// --iap-tunnel-insecure-disable-websocket-cert-check lets a relay with a
// self-signed certificate through (refused without it); --verbosity is
// taken as gcloud's ProxyCommand lines give it.
func TestGcloudIAPFlags(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	tlsRelay := httptest.NewUnstartedServer(e.srv)
	tlsRelay.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	tlsRelay.StartTLS()
	defer tlsRelay.Close()
	wss := "wss" + strings.TrimPrefix(tlsRelay.URL, "https")
	n := e.node(0).Name
	if _, stderr, code := e.run("--iap-tunnel-url-override", wss, n, "--", "true"); code != 255 || !strings.Contains(stderr, "certificate") {
		t.Errorf("self-signed relay without the flag: exit %d:\n%s", code, stderr)
	}
	stdout, stderr, code := e.run("--iap-tunnel-url-override="+wss, "--iap-tunnel-insecure-disable-websocket-cert-check", "--verbosity=warning", n, "--", "echo", "in")
	if code != 0 || stdout != "in\n" {
		t.Errorf("with the flag: exit %d, stdout %q:\n%s", code, stdout, stderr)
	}
	if _, stderr, code := e.run("--verbosity=loud", n, "--", "true"); code == 0 || !strings.Contains(stderr, "--verbosity") {
		t.Errorf("--verbosity=loud: exit %d, stderr %q", code, stderr)
	}
}

// TestGcloudOnlyFlags: a gcloud flag gkessh does not take is a usage
// error naming what to do instead, wherever it is typed, never "flag
// provided but not defined"; a command's own flag of that name is its
// own.
func TestGcloudOnlyFlags(t *testing.T) {
	stdio := Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}
	app := newApp(newDeps(stdio), stdio)
	for name := range gcloudOnly {
		flag := "--" + name
		if len(name) == 1 {
			flag = "-" + name
		}
		for _, line := range []string{flag + " NODE -- true", "NODE " + flag, "tunnel NODE 22 " + flag, flag + " run --all -- true"} {
			_, err := hoistFlags(app, append([]string{"gkessh"}, strings.Fields(line)...))
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(ue.msg, flag+" is gcloud's, not gkessh's: "+gcloudOnly[name]) {
				t.Errorf("gkessh %s: %v, want a usage error naming what to do instead", line, err)
			}
		}
	}
	for _, line := range []string{"audit --format json --all", "keys list --format json", "--format json keys list"} {
		if _, err := hoistFlags(app, append([]string{"gkessh"}, strings.Fields(line)...)); err != nil {
			t.Errorf("gkessh %s: %v: its own --format", line, err)
		}
	}
	e := newParallelSSHEnv(t, "builtin", 1)
	for _, args := range [][]string{
		{e.node(0).Name, "--network", "default", "--region", "us-west1", "--", "true"},
		{"tunnel", "--dest-group", "g", e.node(0).Name, "22"},
	} {
		_, stderr, code := e.run(args...)
		if want := map[bool]int{true: exitUsage, false: exitFailure}[args[0] == "tunnel"]; code != want || !strings.Contains(stderr, "start-iap-tunnel") || strings.Contains(stderr, "not defined") {
			t.Errorf("gkessh %q: exit %d, want %d:\n%s", args, code, want, stderr)
		}
	}
	if got := e.srv.Stats(); got.APICalls != 0 || got.Tunnels != 0 {
		t.Errorf("refused gcloud flags: %d API calls, %d tunnels", got.APICalls, got.Tunnels)
	}
}

// TestGcloudSSHKeyFile: --ssh-key-file is gcloud's name for --key-file.
func TestGcloudSSHKeyFile(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	key := filepath.Join(t.TempDir(), "gcloud-key")
	if _, stderr, code := e.run(e.node(0).Name, "--ssh-key-file", key, "--", "true"); code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	pub, err := keys.PublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if lines := e.projectItems()["ssh-keys"]; !strings.Contains(lines, strings.Fields(string(ssh.MarshalAuthorizedKey(pub)))[1]) {
		t.Errorf("project ssh-keys has no line for %s:\n%s", key, lines)
	}
}

// TestForceKeyFileOverwrite: a key pair gkessh cannot use stops a login
// with a hint naming --force-key-file-overwrite, which replaces the pair
// with a new one and says so (its dry run says it would, and replaces
// nothing), as gcloud's flag does; config-ssh takes it too.
func TestForceKeyFileOverwrite(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	n := e.node(0).Name
	key := filepath.Join(t.TempDir(), "k")
	lonePub := ssh.MarshalAuthorizedKey(testkey.Fixed(t, 0))
	if err := os.WriteFile(key+".pub", lonePub, 0o644); err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string) {
		t.Helper()
		if b, err := os.ReadFile(key + ".pub"); err != nil || !bytes.Equal(b, lonePub) {
			t.Errorf("%s: the .pub changed", what)
		}
		if _, err := os.Stat(key); err == nil {
			t.Errorf("%s: a private key was written", what)
		}
	}
	_, stderr, code := e.run(n, "--key-file", key, "--", "true")
	if code != exitFailure || !strings.Contains(stderr, "--force-key-file-overwrite") {
		t.Errorf("without the flag: exit %d, want 255 and a hint naming the flag:\n%s", code, stderr)
	}
	unchanged("without the flag")
	out, stderr, code := e.run(n, "--key-file", key, "--force-key-file-overwrite", "--dry-run")
	if code != 0 || !strings.Contains(out, "would replace the key pair "+key+" with a new one") {
		t.Errorf("--dry-run: exit %d:\n%s%s", code, out, stderr)
	}
	unchanged("--dry-run")
	out, stderr, code = e.run(n, "--key-file", key, "--force-key-file-overwrite", "--", "echo", "in")
	if code != 0 || out != "in\n" || !strings.Contains(stderr, "Replacing the key pair "+key+" with a new one") {
		t.Fatalf("with the flag: exit %d, stdout %q:\n%s", code, out, stderr)
	}
	kp, err := keys.Load(key)
	if err != nil {
		t.Fatalf("the new pair: %v", err)
	}
	kp.Close()
	if !strings.Contains(e.projectItems()["ssh-keys"], strings.Fields(string(ssh.MarshalAuthorizedKey(kp.Public)))[1]) {
		t.Error("the new key is not in project metadata")
	}
	// config-ssh replaces a broken pair at once: the proxy would stop on it.
	if err := os.WriteFile(key, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := e.run("config-ssh", "--key-file", key, "--force-key-file-overwrite"); code != 0 || !strings.Contains(stderr, "Replacing the key pair") {
		t.Errorf("config-ssh: exit %d:\n%s", code, stderr)
	}
	if kp, err := keys.Load(key); err != nil {
		t.Errorf("after config-ssh: %v", err)
	} else {
		kp.Close()
	}
}
