//go:build unix

package cli

import (
	"strings"
	"testing"
)

// TestSSHGKENodeUnderEnforcedOSLogin: a project that enforces OS Login
// (enable-oslogin=TRUE) still lets gkessh onto its GKE nodes with metadata
// keys, as the nodes' own enable-oslogin=false tells their guest agent; an
// ordinary VM of the same project is refused before anything is written.
func TestSSHGKENodeUnderEnforcedOSLogin(t *testing.T) {
	for _, mode := range sshdModes {
		t.Run(mode, func(t *testing.T) {
			e := newSSHTestEnv(t, mode, 1)
			e.seedProject(map[string]string{"enable-oslogin": "TRUE"})
			if _, err := e.srv.AddNode("plain-vm", "us-west1-a"); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := e.run(e.node(0).Name, "--", "echo", "in")
			if code != 0 || stdout != "in\n" {
				t.Fatalf("GKE node: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stderr, "key to project metadata ssh-keys") {
				t.Errorf("stderr does not say where the key went:\n%s", stderr)
			}
			writes := e.srv.Stats().MetadataWrites
			_, stderr, code = e.run("plain-vm", "--", "true")
			if code != 255 || !strings.Contains(stderr, "OS Login is enabled") {
				t.Errorf("OS Login VM: exit %d, stderr:\n%s", code, stderr)
			}
			if got := e.srv.Stats().MetadataWrites; got != writes {
				t.Errorf("OS Login VM: %d metadata writes", got-writes)
			}
		})
	}
}

// TestSSHOSLoginExtrasNamed: 2-step verification, security keys and OS
// Login certificates are refused with a message naming each that is on.
func TestSSHOSLoginExtrasNamed(t *testing.T) {
	e := newSSHTestEnv(t, "builtin", 0)
	if _, err := e.srv.AddNode("plain-vm", "us-west1-a"); err != nil {
		t.Fatal(err)
	}
	e.seedProject(map[string]string{"enable-oslogin": "TRUE", "enable-oslogin-2fa": "TRUE", "enable-oslogin-sk": "true"})
	_, stderr, code := e.run("plain-vm", "--", "true")
	for _, want := range []string{"2-step verification (enable-oslogin-2fa)", "security keys (enable-oslogin-sk)", "gcloud compute ssh"} {
		if code != 255 || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr lacks %q:\n%s", code, want, stderr)
		}
	}
	if strings.Contains(stderr, "certificates") {
		t.Errorf("names certificates, which are off:\n%s", stderr)
	}
}
