package audit

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/keys"
)

func node(name string, attrs map[string]string) *gce.Instance {
	md := &gce.Metadata{}
	for k, v := range attrs {
		gce.SetMetadataValue(md, k, v)
	}
	return &gce.Instance{
		Name: name, Zone: "https://www.googleapis.com/compute/v1/projects/p/zones/us-west1-a", Status: "RUNNING",
		Labels:            map[string]string{labelGKENode: "", labelCluster: "c", labelPool: "default-pool"},
		Metadata:          md,
		Tags:              &gce.Tags{Items: []string{"gke-c-0123abcd-node"}},
		NetworkInterfaces: []*gce.NetworkInterface{{Network: "https://www.googleapis.com/compute/v1/projects/p/global/networks/default", NetworkIP: "10.128.0.2"}},
	}
}

var gkeAll = &gce.Firewall{Name: "gke-c-0123abcd-all", Priority: 1000, Direction: "INGRESS", SourceRanges: []string{"10.4.0.0/14"},
	TargetTags: []string{"gke-c-0123abcd-node"}, Allowed: []*gce.FirewallAllowed{{IPProtocol: "tcp"}}}

var iapRule = &gce.Firewall{Name: "allow-ssh-ingress-from-iap", Priority: 1000, Direction: "INGRESS", SourceRanges: []string{"35.235.240.0/20"},
	Allowed: []*gce.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"22"}}}}

// TestEvaluateLiveAndConfig: the live checks confirm or overrule what the
// configuration says.
func TestEvaluateLiveAndConfig(t *testing.T) {
	on := map[string]string{kubeletConfigAttribute: "kind: KubeletConfiguration\nreadOnlyPort: 10255\n"}
	off := map[string]string{kubeletConfigAttribute: "kind: KubeletConfiguration\n"}
	for _, tc := range []struct {
		name     string
		attrs    map[string]string
		probe    *Probe
		want     []string
		evidence string
	}{
		{"config on, not probed", on, nil, []string{KubeletReadOnlyPort, PodsReachSSHD}, "kubelet-config sets readOnlyPort: 10255"},
		{"config on, refused live", on, &Probe{SSHD: "SSH-2.0-x"}, []string{PodsReachSSHD}, ""},
		{"config off, open live", off, &Probe{ReadOnlyPort: true, SSHD: "SSH-2.0-x"}, []string{KubeletReadOnlyPort, PodsReachSSHD}, "answered 200 without authentication"},
		{"in use", on, &Probe{ReadOnlyPort: true, Requests: map[string]int64{"metrics": 3}}, []string{KubeletReadOnlyPort}, `in use: kubelet_http_requests_total{server_type="readonly"} path="metrics" 3`},
		{"only earlier audits", on, &Probe{ReadOnlyPort: true, Requests: map[string]int64{"metrics": 2, "healthz": 2}}, []string{KubeletReadOnlyPort}, "what earlier audits leave"},
		{"no sshd on the VPC address", off, &Probe{}, nil, ""},
		{"unreadable port", map[string]string{kubeletConfigAttribute: "readOnlyPort: x\n"}, &Probe{}, nil, ""},
	} {
		findings, err := Evaluate(Input{Project: &gce.Project{Name: "p"}, Instances: []*gce.Instance{node("n1", tc.attrs)},
			Firewalls: []*gce.Firewall{gkeAll, iapRule}, Probes: map[string]*Probe{"n1": tc.probe}, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, f := range findings {
			ids = append(ids, f.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("%s: findings %v, want %v", tc.name, ids, tc.want)
			continue
		}
		if tc.evidence != "" && !strings.Contains(strings.Join(findings[0].Evidence, "\n"), tc.evidence) {
			t.Errorf("%s: evidence %q lacks %q", tc.name, findings[0].Evidence, tc.evidence)
		}
		// Clients move to 10250 before the port goes, when there are any.
		if len(findings) > 0 && findings[0].ID == KubeletReadOnlyPort {
			first := strings.HasPrefix(findings[0].Fix[0], "# first move the clients")
			if first != (tc.name == "in use") {
				t.Errorf("%s: fix %q", tc.name, findings[0].Fix)
			}
		}
	}
}

func TestEvaluateBadRule(t *testing.T) {
	bad := &gce.Firewall{Name: "bad", SourceRanges: []string{"nope"}}
	if _, err := Evaluate(Input{Project: &gce.Project{}, Firewalls: []*gce.Firewall{bad}}); err == nil || !strings.Contains(err.Error(), "rule bad") {
		t.Errorf("Evaluate with a bad rule: %v", err)
	}
}

func TestSeverity(t *testing.T) {
	for _, name := range []string{"info", "low", "medium", "high"} {
		s, err := ParseSeverity(name)
		if err != nil || s.String() != name {
			t.Errorf("ParseSeverity(%q) = %v, %v", name, s, err)
		}
	}
	if _, err := ParseSeverity("critical"); err == nil {
		t.Error("ParseSeverity(critical) did not fail")
	}
	if w, any := Worst([]Finding{{Severity: Low}, {Severity: Medium}}); !any || w != Medium {
		t.Errorf("Worst = %v, %v", w, any)
	}
	if _, any := Worst(nil); any {
		t.Error("Worst(nil) found something")
	}
}

// TestOSLoginByMode: a node is judged by how its guest takes keys.
// A node whose own enable-oslogin=false overrides the
// project's OS Login is a finding, and its metadata keys are judged; a
// node under OS Login, by its own value or the project's, is judged by
// IAM and its metadata keys are not. The old rule reported OS Login on
// GKE nodes as ignored and judged every node's metadata keys.
func TestOSLoginByMode(t *testing.T) {
	key := keys.FormatLine("alice", testkey.Public(t), "")
	for _, tc := range []struct {
		name        string
		project     string // project enable-oslogin, "" for none
		own         string // the node's own, "" for none
		want        []string
		evidence    string // in the OS Login finding's evidence
		noteOnPool  bool   // the fix names the node pool that sets the value
		instanceKey bool   // the node's own never-expiring key is judged
	}{
		{"own false overrides the project's OS Login", "TRUE", "false",
			[]string{OSLoginIgnored, KeysNeverExpire, ProjectKeysNotBlocked, ProjectKeysSudo}, "its own enable-oslogin=false overrides the project's enable-oslogin=TRUE", true, true},
		{"under the project's OS Login", "TRUE", "", []string{OSLoginIAM}, "under OS Login by the project's enable-oslogin=TRUE", false, false},
		{"under its own OS Login", "", "TRUE", []string{OSLoginIAM}, "under OS Login by its own enable-oslogin=TRUE", false, false},
		{"own value that does not parse: the project's", "true", "yes", []string{OSLoginIAM}, "by the project's enable-oslogin=true", false, false},
		{"no OS Login anywhere", "FALSE", "false", []string{KeysNeverExpire, ProjectKeysNotBlocked, ProjectKeysSudo}, "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proj := &gce.Project{Name: "p", CommonInstanceMetadata: &gce.Metadata{}}
			gce.SetMetadataValue(proj.CommonInstanceMetadata, "ssh-keys", key)
			if tc.project != "" {
				gce.SetMetadataValue(proj.CommonInstanceMetadata, "enable-oslogin", tc.project)
			}
			attrs := map[string]string{"ssh-keys": keys.FormatLine("bob", testkey.Public(t), "")}
			if tc.own != "" {
				attrs["enable-oslogin"] = tc.own
			}
			findings, err := Evaluate(Input{Project: proj, Instances: []*gce.Instance{node("n1", attrs)}, Firewalls: []*gce.Firewall{iapRule}, Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			byID := map[string]Finding{}
			for _, f := range findings {
				ids = append(ids, f.ID)
				byID[f.ID] = f
			}
			slices.Sort(ids)
			if want := slices.Sorted(slices.Values(tc.want)); !slices.Equal(ids, want) {
				t.Fatalf("findings %v, want %v", ids, want)
			}
			if tc.evidence != "" {
				f := byID[OSLoginIgnored]
				if f.ID == "" {
					f = byID[OSLoginIAM]
				}
				if !strings.Contains(strings.Join(f.Evidence, "\n"), tc.evidence) || !slices.Equal(f.Nodes, []string{"n1"}) {
					t.Errorf("%s: nodes %v, evidence %q, want n1 and %q", f.ID, f.Nodes, f.Evidence, tc.evidence)
				}
				if got := strings.Contains(strings.Join(f.Fix, "\n"), "node pool default-pool sets enable-oslogin=false"); got != tc.noteOnPool {
					t.Errorf("fix %q: names the pool %v, want %v", f.Fix, got, tc.noteOnPool)
				}
			}
			judged := strings.Contains(strings.Join(byID[KeysNeverExpire].Evidence, "\n"), "n1: instance ssh-keys")
			if judged != tc.instanceKey {
				t.Errorf("the node's own key judged: %v, want %v (%q)", judged, tc.instanceKey, byID[KeysNeverExpire].Evidence)
			}
		})
	}
}
