//go:build unix

package e2e

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOSLoginWithOpenSSH: in a project that enforces OS Login
// (enable-oslogin=TRUE), with an ordinary VM beside a GKE node (which turns
// OS Login off for itself), plain ssh, Ansible's inventory and gkessh run
// reach the VM as the gcloud account's POSIX user, with the key imported
// into its OS Login profile and no metadata written for it; ssh as any
// other user is refused by the proxy at once, naming the user to use. The
// nodes run the builtin sshd: it logs in any user name, where OpenSSH's
// sshd would need the POSIX user to exist on this machine.
func TestOSLoginWithOpenSSH(t *testing.T) {
	need(t, "ssh")
	w := startEmulator(t, "--nodes", "1", "--propagation-delay", "300ms")
	const account, posix = "owner@demo-project.example", "owner_demo_project_example" // the emulator token's principal
	w.env = append(w.env, "CLOUDSDK_CORE_ACCOUNT="+account)
	w.control("POST", "/control/project", map[string]any{"metadata": map[string]string{"enable-oslogin": "TRUE"}}, nil)
	w.control("POST", "/control/nodes", map[string]string{"Name": "plain-vm", "Zone": "us-west1-a"}, nil)
	gke := w.nodes()[0].Name
	local := loginUser(t)

	w.run("gkessh", "config-ssh")
	cfg := filepath.Join(w.home, ".ssh", "config")
	for node, user := range map[string]string{"plain-vm": posix, gke: local} {
		if got := blockUser(t, w, cfg, node); got != user {
			t.Errorf("config-ssh: %s has User %q, want %q", node, got, user)
		}
	}

	// The wrong user first, so that nothing has been imported yet.
	cmd := w.command("ssh", "-F", cfg, "-l", "someone-else", "plain-vm", "true")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	want := "gkessh: plain-vm is under OS Login, which logs you in as " + posix + ", your profile's POSIX user, not as someone-else: log in as " + posix
	if !errors.As(err, &ee) || ee.ExitCode() != 255 || !strings.Contains(string(out), want) {
		t.Errorf("ssh as someone-else: %v, want exit 255 and %q in:\n%s", err, want, out)
	}
	if strings.Contains(string(out), "Imported") {
		t.Errorf("the refused proxy imported the key:\n%s", out)
	}

	if out, err := w.command("ssh", "-F", cfg, "plain-vm", "echo", "in").CombinedOutput(); err != nil || !strings.HasSuffix(string(out), "\nin\n") {
		t.Errorf("ssh plain-vm: %v:\n%s", err, out)
	}
	if n := w.stats().MetadataWrites; n != 0 {
		t.Errorf("ssh to the OS Login VM: %d metadata writes", n)
	}
	// Warm: the proxy remembers the imported key as it does a metadata key.
	w.control("POST", "/control/stats/reset", nil, nil)
	if out, err := w.command("ssh", "-F", cfg, "plain-vm", "true").CombinedOutput(); err != nil {
		t.Errorf("ssh plain-vm again: %v:\n%s", err, out)
	}
	if n := w.stats().APICalls; n != 0 {
		t.Errorf("warm ssh to the OS Login VM: %d API calls", n)
	}

	// A ProxyCommand without --user, as gcloud writes it: ssh's user is
	// unknown to the proxy, which stages the key for the POSIX user.
	if out, err := w.command("ssh", "-F", cfg, "-o", "ProxyCommand=gkessh proxy %h %p --listen-on-stdin --zone=us-west1-a", "plain-vm", "true").CombinedOutput(); err != nil {
		t.Errorf("ssh through a ProxyCommand without --user: %v:\n%s", err, out)
	}

	var inv struct {
		Meta struct {
			HostVars map[string]map[string]any `json:"hostvars"`
		} `json:"_meta"`
	}
	if err := json.Unmarshal([]byte(w.output("gkessh", "inventory", "--list")), &inv); err != nil {
		t.Fatal(err)
	}
	for node, user := range map[string]string{"plain-vm": posix, gke: local} {
		if got := inv.Meta.HostVars[node]["ansible_user"]; got != user {
			t.Errorf("inventory: %s has ansible_user %v, want %q", node, got, user)
		}
	}

	out, err = w.command("gkessh", "run", "--all", "--", "echo", "ran").CombinedOutput()
	if err != nil {
		t.Errorf("run: %v", err)
	}
	for _, node := range []string{"plain-vm", gke} {
		if !regexp.MustCompile(`(?m)^` + node + `: +ran$`).Match(out) {
			t.Errorf("run: %s did not answer:\n%s", node, out)
		}
	}
	if n := w.stats().MetadataWrites; n != 1 {
		t.Errorf("run: %d metadata writes, want 1 (the GKE node's project key)", n)
	}
}

// blockUser is the User of node's Host entry in the ssh config, as ssh
// itself reads it.
func blockUser(t *testing.T, w *world, cfg, node string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^user (.*)$`).FindStringSubmatch(w.output("ssh", "-F", cfg, "-G", node))
	if m == nil {
		t.Fatalf("ssh -G %s: no user", node)
	}
	return m[1]
}
