package audit

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/keys"
)

// TestFixLinesQuoted: every value a project member or the API controls
// (metadata user names, labels, instance, network, tag and rule names)
// reaches a fix line as one quoted word: sh splits each fix line into
// exactly the argv intended and runs nothing inside it. A label that is
// not a GCE label is left out; a value with a newline or another hidden
// character makes its fix a comment (nothing runs). These fix lines used
// to embed the values raw.
func TestFixLinesQuoted(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	// The commands would run in dir, where they create PWNED.
	dir := t.TempDir()
	bad := func(s string) string { return strings.ReplaceAll(s, "M", "PWNED") }
	users := []string{bad("ops$(touch${IFS}M)"), bad("a`touch${IFS}M`"), bad("b;touch${IFS}M"), `it's"q"`, bad("c|touch${IFS}M")}
	var sshKeys []string
	for _, u := range users {
		sshKeys = append(sshKeys, keys.FormatLine(u, testkey.Public(t), ""))
	}
	proj := &gce.Project{Name: "p"}
	proj.CommonInstanceMetadata = &gce.Metadata{}
	gce.SetMetadataValue(proj.CommonInstanceMetadata, "ssh-keys", strings.Join(sshKeys, "\n"))
	gce.SetMetadataValue(proj.CommonInstanceMetadata, "enable-oslogin", "TRUE")

	evil := bad("n1 ;touch M")
	n1 := node(evil, map[string]string{
		kubeletConfigAttribute: "readOnlyPort: 10255\n",
		"kube-env":             "CLUSTER_IP_RANGE: 10.4.0.0/14\n",
		"enable-oslogin":       "false", // overrides the project's
		keys.LegacyMetadataKey: keys.FormatLine("leg", testkey.Public(t), "") + "\n",
	})
	n1.Labels[labelPool] = bad("p;touch${IFS}M;#")         // not a label value: left out
	n1.Labels[labelLocation] = bad("$(touch M)")           // not a label value: the zone instead
	n1.Tags.Items = []string{bad("gke-c-$(touch M)-node")} // the API's answer, unchecked
	n1.NetworkInterfaces[0].Network = "https://www.googleapis.com/compute/v1/projects/p/global/networks/" + bad("net work$(touch M)")
	expired := keys.FormatExpiringLine(bad("old`touch${IFS}M`"), testkey.Public(t), time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))
	gce.SetMetadataValue(n1.Metadata, "ssh-keys", expired)

	n2 := node("n2", map[string]string{"enable-oslogin": "false"})
	n2.Labels[labelCluster] = bad("c;touch${IFS}M;#") // not a label: n2 is no GKE node of any cluster
	n2.Tags.Items = []string{"n2"}
	n3 := node("n3", nil) // under the project's OS Login
	n3.Tags.Items = []string{"n2"}

	podsIn := &gce.Firewall{Name: bad("all pods$(touch M)"), Priority: 1000, Direction: "INGRESS", SourceRanges: []string{"10.4.0.0/14"},
		TargetTags: n1.Tags.Items, Allowed: []*gce.FirewallAllowed{{IPProtocol: "tcp"}}}
	open := &gce.Firewall{Name: bad("open;touch M"), Priority: 1000, Direction: "INGRESS", SourceRanges: []string{"0.0.0.0/0"},
		TargetTags: n1.Tags.Items, Allowed: []*gce.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"22"}}}}
	deny := &gce.Firewall{Name: "deny\nall", Priority: 100, Direction: "INGRESS", SourceRanges: []string{"0.0.0.0/0"},
		TargetTags: []string{"n2"}, Denied: []*gce.FirewallAllowed{{IPProtocol: "tcp"}}}

	findings, err := Evaluate(Input{Project: proj, Instances: []*gce.Instance{n1, n2, n3}, Firewalls: []*gce.Firewall{podsIn, open, deny}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	zone := "--zone=us-west1-a"
	net := "--network=" + bad("net work$(touch M)")
	tag := bad("gke-c-$(touch M)-node")
	ro := "--no-enable-insecure-kubelet-readonly-port"
	want := [][]string{
		{"gcloud", "container", "clusters", "update", "c", "--location=us-west1-a", ro},
		{"gcloud", "compute", "firewall-rules", "update", bad("open;touch M"), "--source-ranges=35.235.240.0/20"},
		{"gcloud", "compute", "firewall-rules", "create", "gke-c-deny-pod-ssh", net, "--direction=INGRESS", "--action=deny", "--rules=tcp:22",
			"--source-ranges=10.4.0.0/14", "--priority=999", "--target-tags=" + tag},
		{"gcloud", "compute", "instances", "remove-metadata", evil, zone, "--keys=enable-oslogin"},
		{"gcloud", "compute", "instances", "remove-metadata", evil, "--keys=sshKeys"},
		{"gkessh", "keys", "prune", "--all-expired", evil},
		{"gkessh", "keys", "remove", "--scope", "instance", "--user", "leg", evil},
		{"gcloud", "compute", "instances", "add-metadata", "n2", zone, "--metadata=block-project-ssh-keys=TRUE"},
		{"gcloud", "compute", "instances", "remove-metadata", "n2", zone, "--keys=enable-oslogin"},
		{"gcloud", "projects", "get-iam-policy", "p", "--flatten=bindings[].members", "--filter=bindings.role:roles/compute.osAdminLogin", "--format=value(bindings.members)"},
	}
	for _, u := range users {
		want = append(want, []string{"gkessh", "keys", "remove", "--scope", "project", "--user", u})
	}
	var got [][]string
	comments := 0
	for _, f := range findings {
		for _, line := range f.Fix {
			argv := shSplit(t, sh, dir, line)
			if len(argv) == 0 {
				comments++
				continue
			}
			if !slices.ContainsFunc(got, func(a []string) bool { return slices.Equal(a, argv) }) {
				got = append(got, argv)
			}
		}
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(a []string) bool { return slices.Equal(a, w) }) {
			t.Errorf("no fix line gives %q", w)
		}
	}
	for _, g := range got {
		if !slices.ContainsFunc(want, func(a []string) bool { return slices.Equal(a, g) }) {
			t.Errorf("unexpected fix argv %q", g)
		}
	}
	if comments != 2 { // the IAP rule before "deny\nall", OS Login's IAM roles
		t.Errorf("%d fix lines are comments, want 2", comments)
	}
	if found, _ := filepath.Glob(filepath.Join(dir, "*")); len(found) > 0 {
		t.Errorf("a fix line ran a command: %v", found)
	}
	for _, f := range findings {
		for _, line := range f.Fix {
			if strings.Contains(line, "p;touch") || strings.Contains(line, "c;touch") {
				t.Errorf("a value that is not a GCE label reached a fix: %s", line)
			}
		}
	}
}

// shSplit is the argv sh makes of line as a command's arguments.
func shSplit(t *testing.T, sh, dir, line string) []string {
	t.Helper()
	cmd := exec.Command(sh, "-c", "printf '%s\\0' "+line)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh on %q: %v", line, err)
	}
	if len(out) == 0 || string(out) == "\x00" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}
