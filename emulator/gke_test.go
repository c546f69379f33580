//go:build unix

package emulator

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	compute "google.golang.org/api/compute/v1"

	"github.com/gkessh/gkessh/internal/testkey"
)

// TestGKENodeMetadata: a GKE node carries the instance metadata and labels
// GKE sets, read through Google's client; an ordinary VM carries neither.
func TestGKENodeMetadata(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 2})
	if _, err := srv.AddNode("plain-vm", "us-west1-a"); err != nil {
		t.Fatal(err)
	}
	svc := computeClient(t, hs, srv.Token())
	p := srv.ProjectName()
	proj, err := svc.Projects.Get(p).Do()
	if err != nil {
		t.Fatal(err)
	}
	name, zone := gkeNodeName(0) // gke-cluster-default-pool-3e89aeb0-b47k
	in, err := svc.Instances.Get(p, zone, name).Do()
	if err != nil {
		t.Fatal(err)
	}
	md := map[string]string{}
	for _, it := range in.Metadata.Items {
		md[it.Key] = *it.Value
	}
	uid := md["cluster-uid"]
	want := map[string]string{
		"cluster-name":             "cluster",
		"cluster-location":         "us-west1",
		"created-by":               fmt.Sprintf("projects/%d/zones/%s/instanceGroupManagers/gke-cluster-default-pool-3e89aeb0-grp", proj.Id, zone),
		"instance-template":        fmt.Sprintf("projects/%d/global/instanceTemplates/gke-cluster-default-pool-3e89aeb0", proj.Id),
		"disable-legacy-endpoints": "true",
		"enable-oslogin":           "false",
		"enable-guest-attributes":  "TRUE",
	}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, md[k], v)
		}
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(uid) {
		t.Errorf("cluster-uid = %q, want 64 hex digits", uid)
	}
	for k, sub := range map[string]string{
		"kube-labels":    "cloud.google.com/gke-nodepool=default-pool",
		"kube-env":       "KUBELET_KEY: PLACEHOLDER",
		"kubelet-config": "kind: KubeletConfiguration",
	} {
		if !strings.Contains(md[k], sub) {
			t.Errorf("metadata %s lacks %q: %q", k, sub, md[k])
		}
	}
	// The boot scripts weigh what GKE's do (gke.go says why).
	for k, least := range map[string]int{"configure-sh": 39000, "user-data": 3500} {
		if v := md[k]; len(v) < least || !strings.Contains(v, "PLACEHOLDER") {
			t.Errorf("metadata %s is %d bytes, want a placeholder of %d or more", k, len(v), least)
		}
	}
	if !strings.HasPrefix(md["user-data"], "#cloud-config\n") {
		t.Errorf("user-data is not a cloud-config: %.40q", md["user-data"])
	}
	if strings.Contains(md["kube-env"], "BEGIN") {
		t.Errorf("kube-env carries something that looks like a real secret")
	}
	for k, v := range map[string]string{
		"goog-gke-node":             "",
		"goog-k8s-cluster-name":     "cluster",
		"goog-k8s-cluster-location": "us-west1",
		"goog-k8s-node-pool-name":   "default-pool",
	} {
		if got, ok := in.Labels[k]; !ok || got != v {
			t.Errorf("label %s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	if id := in.Labels["goog-gke-cluster-id-base32"]; len(id) != 52 {
		t.Errorf("goog-gke-cluster-id-base32 = %q, want 52 base32 digits", id)
	}

	// Both nodes of the cluster share its uid; the plain VM has no GKE items.
	name1, zone1 := gkeNodeName(1)
	in1, err := svc.Instances.Get(p, zone1, name1).Do()
	if err != nil {
		t.Fatal(err)
	}
	if got := valueIn(in1.Metadata, "cluster-uid"); got != uid {
		t.Errorf("second node's cluster-uid %q, want the cluster's %q", got, uid)
	}
	vm, err := svc.Instances.Get(p, "us-west1-a", "plain-vm").Do()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cluster-name", "cluster-uid", "kube-env", "kubelet-config", "enable-oslogin"} {
		if valueIn(vm.Metadata, k) != "" {
			t.Errorf("plain VM has GKE's %s", k)
		}
	}
	if len(vm.Labels) != 0 {
		t.Errorf("plain VM labels %v, want none", vm.Labels)
	}
	// Nor does it run a kubelet: nothing answers at its ports.
	n, err := srv.findNode("plain-vm", "")
	if err != nil {
		t.Fatal(err)
	}
	if addr, _ := n.localAddr("127.0.0.1", kubeletReadOnlyPort); addr != "" {
		t.Errorf("plain VM serves a kubelet at %s", addr)
	}
}

func valueIn(md *compute.Metadata, key string) string {
	for _, it := range md.Items {
		if it.Key == key && it.Value != nil {
			return *it.Value
		}
	}
	return ""
}

// TestGKEPoolsUnderProjectOSLogin: with enable-oslogin=TRUE on the
// project, the two kinds of GKE node pool part ways: default-pool's node
// carries its own enable-oslogin=false and its guest still installs
// metadata keys; pool-1's carries no such key, follows the project and
// installs only OS Login profile keys, none from metadata.
func TestGKEPoolsUnderProjectOSLogin(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 1})
	older := srv.Node(srv.Nodes()[0]) // gke-cluster-default-pool-…
	newer, err := srv.AddNode("gke-cluster-pool-1-8b3f02aa-b47k", "us-west1-a")
	if err != nil {
		t.Fatal(err)
	}
	svc := computeClient(t, hs, srv.Token())
	for _, tc := range []struct {
		n    *Node
		want string
	}{{older, "false"}, {newer, ""}} {
		in, err := svc.Instances.Get(srv.ProjectName(), tc.n.Zone, tc.n.Name).Do()
		if err != nil {
			t.Fatal(err)
		}
		if got := valueIn(in.Metadata, "enable-oslogin"); got != tc.want {
			t.Errorf("%s: enable-oslogin %q, want %q", tc.n.Name, got, tc.want)
		}
	}
	fo, fn := useFakeSSHD(t, older), useFakeSSHD(t, newer)
	line := "alice:" + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(testkey.Public(t))))
	if err := srv.SetProjectMetadata(map[string]*string{"ssh-keys": &line}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*fakeSSHD{fo, fn} {
		for got := f.nextInstall(t, 10*time.Second); len(got["alice"]) != 1; got = f.nextInstall(t, 10*time.Second) {
		}
	}
	if err := srv.SetProjectMetadata(map[string]*string{"enable-oslogin": ptr("TRUE")}); err != nil {
		t.Fatal(err)
	}
	// The newer pool's guest drops the metadata key; the older's keeps it.
	for got := fn.nextInstall(t, 10*time.Second); len(got) != 0; got = fn.nextInstall(t, 10*time.Second) {
	}
	if got := older.InstalledKeys(); len(got["alice"]) != 1 {
		t.Errorf("%s dropped the metadata key under the project's OS Login: %v", older.Name, rendered(got))
	}
}
