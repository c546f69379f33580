//go:build unix

package emulator

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"

	compute "google.golang.org/api/compute/v1"
)

// gkeNode is where a GKE node sits, read from its instance name.
type gkeNode struct {
	Cluster  string // cluster name
	Pool     string // node pool name (may contain dashes)
	Group    string // the pool's instance-group hash, e.g. 3e89aeb0
	Zone     string // the node's zone
	Location string // the cluster's location: its region, since pools span zones here
}

// parseGKENode reads a GKE node name, gke-CLUSTER-POOL-GROUP-SUFFIX. The
// emulator's clusters have one-word names, so POOL is everything between
// CLUSTER and GROUP.
func parseGKENode(name, zone string) (gkeNode, bool) {
	parts := strings.Split(name, "-")
	if len(parts) < 5 || parts[0] != "gke" {
		return gkeNode{}, false
	}
	return gkeNode{
		Cluster:  parts[1],
		Pool:     strings.Join(parts[2:len(parts)-2], "-"),
		Group:    parts[len(parts)-2],
		Zone:     zone,
		Location: regionOf(zone),
	}, true
}

func regionOf(zone string) string { return zone[:max(strings.LastIndex(zone, "-"), 0)] }

// UID is the cluster's 64-hex-digit uid, stable for a project and name.
func (g gkeNode) UID(project string) string {
	sum := sha256.Sum256([]byte(project + "/" + g.Location + "/" + g.Cluster))
	return hex.EncodeToString(sum[:])
}

// template is the pool's instance template and instance group name stem.
func (g gkeNode) template() string {
	return fmt.Sprintf("gke-%s-%s-%s", g.Cluster, g.Pool, g.Group)
}

// labels are the labels GKE puts on a node's instance.
func (g gkeNode) labels(project string) map[string]string {
	uid, _ := hex.DecodeString(g.UID(project))
	return map[string]string{
		"goog-gke-node":                         "",
		"goog-k8s-cluster-name":                 g.Cluster,
		"goog-k8s-cluster-location":             g.Location,
		"goog-k8s-node-pool-name":               g.Pool,
		"goog-gke-cluster-id-base32":            strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(uid)),
		"goog-gke-node-pool-provisioning-model": "on-demand",
	}
}

// OverridesOSLogin reports whether the node pool's nodes carry their own
// enable-oslogin=false. Google documents OS Login on GKE Standard node
// pools of private clusters from 1.20.5 and of public clusters from
// 1.23.5, not on Autopilot (cloud.google.com/kubernetes-engine/docs/how-to/enable-oslogin,
// and "Manage OS Login in an organization"'s limitations); the node-pool
// API keeps the key to itself (it refuses enable-oslogin as reserved). The
// emulator has both kinds: default-pool's nodes, an older pool's, say
// false on the instance and keep taking metadata keys whatever the
// project says; the other pools' carry no such key and follow the
// project's enable-oslogin, OS Login included. Which kind a real pool of
// a given version is cannot be checked here.
func (g gkeNode) OverridesOSLogin() bool { return g.Pool == "default-pool" }

// The node's boot scripts are placeholders as long as the real ones, so
// that a listing of many nodes weighs what GKE's does: they are most of a
// node's instance resource, 43 KB of its 50. GKE's own are not public; the
// lengths are those of the files Kubernetes' kube-up puts under the same
// keys for COS nodes (cluster/gce/gci/configure.sh, 39,342 bytes, and
// cluster/gce/gci/node.yaml, 3,604 bytes, at kubernetes/kubernetes
// 008b365 and 3f6ebef).
var (
	configureSh = placeholder("#!/usr/bin/env bash\n", "# PLACEHOLDER: GKE's node bootstrap script\n", 39342)
	userData    = placeholder("#cloud-config\n", "# PLACEHOLDER: GKE's cloud-config for COS\n", 3604)
)

// placeholder is first followed by line repeated to size bytes, give or
// take a line.
func placeholder(first, line string, size int) string {
	return first + strings.Repeat(line, (size-len(first))/len(line))
}

// metadata is the instance metadata GKE sets on every node of a pool
// (values as a current GKE Standard node on COS carries them, with the
// secrets in kube-env replaced by placeholders), enable-oslogin=false
// only where the pool overrides OS Login (OverridesOSLogin). kubelet-config
// is not here: the kubelet stub writes it (kubelet.go).
func (g gkeNode) metadata(project string, projectNumber uint64) []*compute.MetadataItems {
	tmpl := g.template()
	kubeLabels := strings.Join([]string{
		"cloud.google.com/gke-boot-disk=pd-balanced",
		"cloud.google.com/gke-container-runtime=containerd",
		"cloud.google.com/gke-cpu-scaling-level=2",
		"cloud.google.com/gke-logging-variant=DEFAULT",
		"cloud.google.com/gke-max-pods-per-node=110",
		"cloud.google.com/gke-memory-gb-scaling-level=4",
		"cloud.google.com/gke-nodepool=" + g.Pool,
		"cloud.google.com/gke-os-distribution=cos",
		"cloud.google.com/gke-provisioning=standard",
		"cloud.google.com/gke-stack-type=IPV4",
		"cloud.google.com/machine-family=e2",
		"cloud.google.com/private-node=true",
	}, ",")
	kubeEnv := strings.Join([]string{
		"ALLOCATE_NODE_CIDRS: \"true\"",
		"CA_CERT: PLACEHOLDER-CA-CERT-BASE64",
		"CLUSTER_IP_RANGE: 10.4.0.0/14",
		"CLUSTER_NAME: " + g.Cluster,
		"CONTAINER_RUNTIME: containerd",
		"DNS_DOMAIN: cluster.local",
		"DNS_SERVER_IP: 10.8.0.10",
		"ENABLE_NODE_PROBLEM_DETECTOR: standalone",
		"KUBELET_ARGS: --v=2 --cloud-provider=external --experimental-mounter-path=/home/kubernetes/containerized_mounter/mounter --cert-dir=/var/lib/kubelet/pki/ --kubeconfig=/var/lib/kubelet/kubeconfig --image-credential-provider-config=/etc/srv/kubernetes/cri_auth_config.yaml --image-credential-provider-bin-dir=/home/kubernetes/bin --max-pods=110 --node-labels=" + kubeLabels,
		"KUBELET_CERT: PLACEHOLDER-KUBELET-CERT-BASE64",
		"KUBELET_KEY: PLACEHOLDER-KUBELET-KEY-BASE64",
		"KUBERNETES_MASTER: \"true\"",
		"KUBERNETES_MASTER_NAME: 172.16.0.2",
		"NODE_LABELS: " + kubeLabels,
		"SERVICE_CLUSTER_IP_RANGE: 10.8.0.0/20",
		"TPM_BOOTSTRAP_CERT: PLACEHOLDER-TPM-BOOTSTRAP-CERT-BASE64",
		"TPM_BOOTSTRAP_KEY: PLACEHOLDER-TPM-BOOTSTRAP-KEY-BASE64",
		"",
	}, "\n")
	items := []struct{ k, v string }{
		{"cluster-location", g.Location},
		{"cluster-name", g.Cluster},
		{"cluster-uid", g.UID(project)},
		{"configure-sh", configureSh},
		{"created-by", fmt.Sprintf("projects/%d/zones/%s/instanceGroupManagers/%s-grp", projectNumber, g.Zone, tmpl)},
		{"disable-address-manager", "true"},
		{"disable-legacy-endpoints", "true"},
		{"enable-oslogin", "false"},
		{"gci-metrics-enabled", "true"},
		{"gci-update-strategy", "update_disabled"},
		{"google-compute-enable-pcid", "true"},
		{"instance-template", fmt.Sprintf("projects/%d/global/instanceTemplates/%s", projectNumber, tmpl)},
		{"kube-env", kubeEnv},
		{"kube-labels", kubeLabels},
		{"serial-port-logging-enable", "true"},
		{"user-data", userData},
	}
	var out []*compute.MetadataItems
	for _, it := range items {
		if it.k == "enable-oslogin" && !g.OverridesOSLogin() {
			continue
		}
		out = append(out, &compute.MetadataItems{Key: it.k, Value: ptr(it.v)})
	}
	return out
}
