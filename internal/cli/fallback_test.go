//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// TestSSHProjectRefusedFallsBackToInstance: with a token that may set
// instance metadata (and act as the VM's service account) but not project
// metadata, gkessh writes the key to the instance, as gcloud does, says so,
// and logs in; without actAs the refusal names that permission.
func TestSSHProjectRefusedFallsBackToInstance(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 2)
	useToken := func(tok string, perms ...string) {
		e.srv.AddGrant(tok, emulator.Grant{Principal: "ops@example.com", Projects: []string{e.srv.ProjectName()}, Permissions: perms})
		if err := os.WriteFile(filepath.Join(e.home, "token"), []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	useToken("instance-rights", "compute.instances.setMetadata", "iam.serviceAccounts.actAs", "iap.tunnelInstances.accessViaIAP")
	n := e.node(0)
	stdout, stderr, code := e.run(n.Name, "--", "echo", "in")
	if code != 0 || stdout != "in\n" {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"key to instance " + n.Name + " metadata ssh-keys (project metadata refused: no compute.projects.setCommonInstanceMetadata; gcloud falls back the same way)",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if got := e.projectItems()["ssh-keys"]; got != "" {
		t.Errorf("project ssh-keys written: %q", got)
	}

	useToken("no-actas", "compute.instances.setMetadata", "iap.tunnelInstances.accessViaIAP")
	_, stderr, code = e.run(e.node(1).Name, "--", "true")
	if code != 255 || !strings.Contains(stderr, "iam.serviceAccounts.actAs") || !strings.Contains(stderr, "-compute@developer.gserviceaccount.com") {
		t.Errorf("without actAs: exit %d, stderr:\n%s", code, stderr)
	}
}
