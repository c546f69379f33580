//go:build unix

package cli

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	compute "google.golang.org/api/compute/v1"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/keys"
)

func TestDoctor(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 4})
	names := e.srv.Nodes()
	e.srv.Node(names[1]).SetFirewall(false)
	if err := e.srv.SetInstanceMetadata(names[2], map[string]*string{"enable-oslogin": new("TRUE")}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Node(names[3]).SetStatus("TERMINATED"); err != nil {
		t.Fatal(err)
	}
	// The login's own words for a stopped node.
	_, loginErr, _ := e.run(names[3], "--", "true")
	stopped := strings.TrimPrefix(strings.TrimSpace(loginErr), "gkessh: ")
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"project only", []string{"doctor"}, 0, []string{"ok    project demo-project", "does not exist yet", "compute API: project demo-project readable"}},
		{"healthy node", []string{"doctor", names[0]}, 0, []string{"is RUNNING", "host keys: " + names[0] + " published", "IAP tunnel to " + names[0] + ":22: SSH-2.0-"}},
		{"firewall closed", []string{"doctor", names[1]}, exitOther, []string{"FAIL  IAP tunnel to " + names[1] + ":22", "FAIL  firewall: from 35.235.240.0/20 (IAP) to tcp:22, rule gce-emulator-closed-" + names[1] + " (deny, priority 1) blocks it"}},
		{"missing node", []string{"doctor", "gke-nope"}, exitOther, []string{"FAIL  instance"}},
		{"OS Login", []string{"doctor", names[2]}, exitOther, []string{"FAIL  OS Login is on for " + names[2]}},
		{"stopped", []string{"doctor", names[3]}, exitOther, []string{"FAIL  " + stopped}},
		{"two nodes", []string{"doctor", "a", "b"}, exitUsage, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := e.run(tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tt.name == "OS Login" && (strings.Contains(out, "ok    key is in") || strings.Contains(out, "come from")) {
				t.Errorf("under OS Login doctor still vouches for metadata keys:\n%s", out)
			}
			if strings.Contains(out, "instance metadata only (block-project-ssh-keys)") {
				t.Errorf("the garbled block-project-ssh-keys line is back:\n%s", out)
			}
			if strings.Contains(out+errOut, e.srv.Token()) {
				t.Fatal("doctor printed the access token")
			}
		})
	}
}

// TestDoctorTroubleshoot: each of gcloud --troubleshoot's checks, failing
// and passing. The failing runs name what is missing or which rule blocks,
// and the firewall fix doctor prints opens the way when carried out.
func TestDoctorTroubleshoot(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 3})
	names := e.srv.Nodes()
	doctor := func(node string) (string, int) {
		t.Helper()
		out, errOut, code := e.run("doctor", node)
		if strings.Contains(out+errOut, e.srv.Token()) {
			t.Fatal("doctor printed the access token")
		}
		return out, code
	}
	has := func(out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("doctor output lacks %q:\n%s", w, out)
			}
		}
	}
	lacks := func(out string, bad ...string) {
		t.Helper()
		for _, b := range bad {
			if strings.Contains(out, b) {
				t.Errorf("doctor output has %q:\n%s", b, out)
			}
		}
	}

	out, code := doctor(names[0])
	if code != 0 {
		t.Fatalf("healthy node: exit %d\n%s", code, out)
	}
	has(out, "ok    IAM: you hold every permission a login to "+names[0]+" needs",
		"ok    firewall: from 35.235.240.0/20 (IAP) to tcp:22, rule allow-ssh-ingress-from-iap (allow, priority 1000) admits it",
		"ok    serial console of "+names[0]+": no sign of disk full, emergency shell, kernel panic, GRUB",
		"ok    keys on "+names[0]+" come from project and instance metadata")
	lacks(out, "FAIL", "warn")

	t.Run("IAM", func(t *testing.T) {
		e.srv.AddGrant("limited", emulator.Grant{Projects: []string{e.srv.ProjectName()},
			Permissions: []string{"compute.instances.get", "compute.instances.use", "compute.projects.get", "compute.zoneOperations.get"}})
		tokenFile := filepath.Join(e.home, "token")
		if err := os.WriteFile(tokenFile, []byte("limited"), 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(tokenFile, []byte(e.srv.Token()), 0o600)
		out, code := doctor(names[0])
		if code != exitOther {
			t.Errorf("exit %d, want %d", code, exitOther)
		}
		has(out, "FAIL  IAM on the instance "+names[0]+": missing compute.instances.setMetadata\n",
			"FAIL  IAM on the project: missing resourcemanager.projects.get, compute.globalOperations.get, compute.projects.setCommonInstanceMetadata\n",
			"FAIL  IAM on the IAP tunnel to "+names[0]+": missing iap.tunnelInstances.accessViaIAP",
			"FAIL  IAM on service account ", "missing iam.serviceAccounts.actAs, iam.serviceAccounts.get:")
		lacks(out, "compute.instances.get,", "compute.projects.get,", "ok    IAM")
	})

	t.Run("firewall", func(t *testing.T) {
		e.putRule(&compute.Firewall{Name: "deny-all-in", Priority: 100, SourceRanges: []string{"0.0.0.0/0"},
			Denied: []*compute.FirewallDenied{{IPProtocol: "all"}}})
		out, _ := doctor(names[1])
		fix := "gcloud compute firewall-rules create allow-iap-before-deny-all-in --network=default --direction=INGRESS --action=allow --rules=tcp:22 --source-ranges=35.235.240.0/20 --priority=99"
		has(out, "FAIL  firewall: from 35.235.240.0/20 (IAP) to tcp:22, rule deny-all-in (deny, priority 100) blocks it: "+fix)
		e.applyFix(fix)
		out, _ = doctor(names[1])
		has(out, "ok    firewall: from 35.235.240.0/20 (IAP) to tcp:22, rule allow-iap-before-deny-all-in (allow, priority 99) admits it",
			"ok    IAP tunnel to "+names[1]+":22")
		// No IAP rule at all: only a port range from a wider source.
		for _, r := range []string{"deny-all-in", "allow-iap-before-deny-all-in", "allow-ssh-ingress-from-iap", "default-allow-ssh"} {
			e.srv.DeleteFirewallRule(r)
		}
		out, _ = doctor(names[1])
		has(out, "FAIL  firewall: from 35.235.240.0/20 (IAP) to tcp:22, no rule matches: the implied deny-ingress rule blocks it: gcloud compute firewall-rules create allow-ssh-ingress-from-iap ")
		e.putRule(&compute.Firewall{Name: "ssh-range", SourceRanges: []string{"35.235.0.0/16"},
			Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"20-30"}}}})
		out, _ = doctor(names[1])
		has(out, "ok    firewall: from 35.235.240.0/20 (IAP) to tcp:22, rule ssh-range (allow, priority 1000) admits it")
	})

	t.Run("serial console", func(t *testing.T) {
		line := "[  512.120391] EXT4-fs error (device sda1): ext4_journal_check_start: No space left on device"
		if err := e.srv.AppendSerial(names[2], line, "[  600.1] Kernel panic - not syncing: Attempted to kill init!"); err != nil {
			t.Fatal(err)
		}
		out, code := doctor(names[2])
		if code != exitOther {
			t.Errorf("exit %d, want %d", code, exitOther)
		}
		has(out, "FAIL  serial console of "+names[2]+": disk full: \""+line+"\"",
			"FAIL  serial console of "+names[2]+": kernel panic: \"[  600.1] Kernel panic - not syncing: Attempted to kill init!\"")
	})

	t.Run("legacy sshKeys", func(t *testing.T) {
		kp := testkey.Public(t)
		line := keys.FormatLine("dave", kp, "")
		if err := e.srv.SetInstanceMetadata(names[0], map[string]*string{"sshKeys": &line}); err != nil {
			t.Fatal(err)
		}
		out, _ := doctor(names[0])
		has(out, "warn  keys on "+names[0]+" come from instance metadata only: it has a legacy sshKeys item, so its guest ignores project keys")
		lacks(out, "ok    keys on "+names[0])
	})
}

// TestDoctorEscapes: what the node says (its sshd banner) is printed
// escaped, as everything else from outside: a hostile banner cannot clear
// the screen, set the title or pose as a doctor line.
func TestDoctorEscapes(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	n := e.srv.Node(e.srv.Nodes()[0])
	banner := "SSH-2.0-evil\x1b[2J\x1b[H\x1b]0;owned\x07\x1b[32mok    everything is fine\x1b[0m"
	nodeServer(t, n, 2222, func(c net.Conn) { c.Write([]byte(banner + "\r\n")) })
	out, _, _ := e.run("doctor", "--port", "2222", n.Name)
	if strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, `SSH-2.0-evil\x1b[2J\x1b[H\x1b]0;owned\a\x1b[32mok`) {
		t.Errorf("the banner is not escaped:\n%q", out)
	}
}

// TestDoctorProjectWriteRefused: a caller who may not write project
// metadata but holds setMetadata on the instance and actAs on its service
// account gets in through the instance's own metadata, as gcloud falls
// back; doctor says WARN with that explanation, not FAIL. Without the
// instance's setMetadata it is a FAIL.
func TestDoctorProjectWriteRefused(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	perms := []string{"compute.instances.get", "compute.instances.list", "compute.instances.use", "compute.instances.setMetadata",
		"compute.instances.getGuestAttributes", "compute.instances.getSerialPortOutput", "compute.instances.getEffectiveFirewalls",
		"compute.projects.get", "compute.zoneOperations.get", "resourcemanager.projects.get", "compute.networks.get", "compute.firewalls.list",
		"iap.tunnelInstances.accessViaIAP", "iam.serviceAccounts.actAs", "iam.serviceAccounts.get"}
	e.srv.AddGrant("instance-writer", emulator.Grant{Projects: []string{e.srv.ProjectName()}, Permissions: perms})
	tokenFile := filepath.Join(e.home, "token")
	if err := os.WriteFile(tokenFile, []byte("instance-writer"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := e.run("doctor", node)
	want := "warn  IAM on the project: missing compute.globalOperations.get, compute.projects.setCommonInstanceMetadata: the login cannot write project metadata, so your key goes to " + node + "'s own metadata instead"
	if code != 0 || !strings.Contains(out, want) || strings.Contains(out, "FAIL") {
		t.Errorf("doctor: exit %d, want 0 and %q:\n%s%s", code, want, out, errOut)
	}
	// The login does get in, through the instance.
	if _, stderr, code := e.run(node, "--", "true"); code != 0 || !strings.Contains(stderr, "project metadata refused") {
		t.Errorf("login: exit %d:\n%s", code, stderr)
	}
	e.srv.AddGrant("no-writer", emulator.Grant{Projects: []string{e.srv.ProjectName()},
		Permissions: slices.DeleteFunc(slices.Clone(perms), func(p string) bool { return p == "compute.instances.setMetadata" })})
	if err := os.WriteFile(tokenFile, []byte("no-writer"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code = e.run("doctor", node)
	if code != exitOther || !strings.Contains(out, "FAIL  IAM on the project: missing compute.globalOperations.get, compute.projects.setCommonInstanceMetadata\n") {
		t.Errorf("without setMetadata: exit %d, want a FAIL for the project write:\n%s", code, out)
	}
}

// TestDoctorInstanceWriteRefused: without compute.instances.setMetadata
// but with the project write, a login to a node that reads project keys
// gets in through the project, so doctor warns rather than fails (gcloud's
// troubleshooter names it a problem). On a node that blocks project keys
// it is a failure.
func TestDoctorInstanceWriteRefused(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	e.srv.AddGrant("project-writer", emulator.Grant{Projects: []string{e.srv.ProjectName()}, Permissions: []string{
		"compute.instances.get", "compute.instances.list", "compute.instances.use", "compute.instances.getGuestAttributes",
		"compute.instances.getSerialPortOutput", "compute.instances.getEffectiveFirewalls", "compute.projects.get",
		"compute.projects.setCommonInstanceMetadata", "compute.globalOperations.get", "compute.zoneOperations.get",
		"resourcemanager.projects.get", "compute.networks.get", "compute.firewalls.list", "iap.tunnelInstances.accessViaIAP",
		"iam.serviceAccounts.actAs", "iam.serviceAccounts.get"}})
	if err := os.WriteFile(filepath.Join(e.home, "token"), []byte("project-writer"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "warn  IAM on the instance " + node + ": missing compute.instances.setMetadata: your key goes to project metadata"
	out, errOut, code := e.run("doctor", node)
	if code != 0 || !strings.Contains(out, want) || strings.Contains(out, "FAIL") {
		t.Errorf("doctor: exit %d, want 0 and %q:\n%s%s", code, want, out, errOut)
	}
	if _, stderr, code := e.run(node, "--", "true"); code != 0 {
		t.Errorf("login: exit %d:\n%s", code, stderr)
	}
	if err := e.srv.SetInstanceMetadata(node, map[string]*string{"block-project-ssh-keys": ptrTo("TRUE")}); err != nil {
		t.Fatal(err)
	}
	out, _, code = e.run("doctor", node)
	if code != exitOther || !strings.Contains(out, "FAIL  IAM on the instance "+node+": missing compute.instances.setMetadata\n") {
		t.Errorf("a node that blocks project keys: exit %d, want a FAIL for the instance write:\n%s", code, out)
	}
}

// TestDoctorProjectOrigin: doctor's project line says where the project
// came from, since a wrong default project reads as "permission denied"
// further down.
func TestDoctorProjectOrigin(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	project := e.srv.ProjectName()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"doctor"}, "ok    project " + project + ", from CLOUDSDK_CORE_PROJECT\n"},
		{[]string{"doctor", "--project", project}, "ok    project " + project + ", from --project\n"},
	} {
		out, stderr, code := e.run(tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, want %q in\n%s%s", tc.args, code, tc.want, out, stderr)
		}
	}
}
