// Package audit judges how exposed a project's GKE nodes are: the kubelet's
// unauthenticated read-only port, node sshd reachable from pods and the
// internet, IAP's range, the metadata keys that give sudo, and nodes that
// override the project's OS Login. A node under OS Login is judged by IAM,
// not by the metadata keys its guest ignores. Each finding comes with the
// commands that fix it, quoted for a person to paste (fix.go).
package audit

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/firewall"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/metakeys"
	"github.com/gkessh/gkessh/keys"
)

// Severity ranks findings.
type Severity int

// The severities, lowest first.
const (
	Info Severity = iota
	Low
	Medium
	High
)

var severityNames = []string{"info", "low", "medium", "high"}

func (s Severity) String() string { return severityNames[s] }

// ParseSeverity reads "info", "low", "medium" or "high".
func ParseSeverity(s string) (Severity, error) {
	if i := slices.Index(severityNames, s); i >= 0 {
		return Severity(i), nil
	}
	return 0, fmt.Errorf("audit: severity %q: want info, low, medium or high", s)
}

// MarshalJSON writes the severity's name.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a severity's name.
func (s *Severity) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	v, err := ParseSeverity(name)
	*s = v
	return err
}

// The findings, by ID.
const (
	KubeletReadOnlyPort    = "kubelet-readonly-port"
	PodsReachSSHD          = "pods-reach-sshd"
	SSHOpenToInternet      = "ssh-open-to-internet"
	IAPRangeMissing        = "iap-range-missing"
	ProjectKeysSudo        = "project-keys-sudo"
	KeysNeverExpire        = "keys-never-expire"
	KeysExpired            = "keys-expired"
	ProjectKeysNotBlocked  = "project-keys-not-blocked"
	LegacySSHKeys          = "legacy-sshkeys"
	OSLoginIgnored         = "oslogin-ignored"
	OSLoginIAM             = "oslogin-iam"
	iapSource              = "35.235.240.0/20"
	labelCluster           = "goog-k8s-cluster-name"
	labelPool              = "goog-k8s-node-pool-name"
	labelLocation          = "goog-k8s-cluster-location"
	labelGKENode           = "goog-gke-node"
	kubeletConfigAttribute = "kubelet-config"
)

// Finding is one exposure: how bad, on which nodes, what shows it, and
// what to run to fix it.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
	Nodes    []string `json:"nodes"`
	Evidence []string `json:"evidence"`
	Fix      []string `json:"fix"`
}

// Input is everything the findings are judged from.
type Input struct {
	Project   *gce.Project
	Instances []*gce.Instance
	Firewalls []*gce.Firewall // the project's rules (firewalls.list)
	// Probes are the live checks by node name; a node without one was
	// judged from its configuration alone.
	Probes map[string]*Probe
	Now    time.Time
	// Own are the expiring lines audit's own login used for the live
	// checks (one it wrote is not in the metadata judged, which was read
	// before): they are not judged. Every other line of the auditor's
	// key is, a permanent one above all.
	Own []Own
}

// Evaluate judges the input and returns the findings, worst first.
func Evaluate(in Input) ([]Finding, error) {
	rules, err := firewall.ParseAll(in.Firewalls)
	if err != nil {
		return nil, err
	}
	e := &evaluation{in: in, rules: rules, found: map[string]*Finding{}}
	for _, inst := range in.Instances {
		e.kubelet(inst)
		e.network(inst)
		e.osLogin(inst)
	}
	e.metadataKeys()
	out := make([]Finding, 0, len(e.found))
	for _, f := range e.found {
		slices.Sort(f.Nodes)
		f.Nodes = slices.Compact(f.Nodes)
		f.Fix = dedup(f.Fix)
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(b.Severity, a.Severity), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Worst returns the highest severity among findings, and false when there
// are none.
func Worst(findings []Finding) (Severity, bool) {
	if len(findings) == 0 {
		return 0, false
	}
	w := Info
	for _, f := range findings {
		w = max(w, f.Severity)
	}
	return w, true
}

type evaluation struct {
	in    Input
	rules []firewall.Rule
	found map[string]*Finding
}

// add records that node shows finding id, with evidence and fixes.
func (e *evaluation) add(id string, sev Severity, title, node string, evidence []string, fix ...string) {
	f := e.found[id]
	if f == nil {
		f = &Finding{ID: id, Severity: sev, Title: title, Nodes: []string{}}
		e.found[id] = f
	}
	if node != "" {
		f.Nodes = append(f.Nodes, node)
	}
	f.Evidence = append(f.Evidence, evidence...)
	f.Fix = append(f.Fix, fix...)
}

// gke describes a GKE node: cluster, pool and the location gcloud
// container commands want.
type gke struct{ cluster, pool, location string }

func gkeOf(inst *gce.Instance) (gke, bool) {
	g := gke{label(inst, labelCluster), label(inst, labelPool), label(inst, labelLocation)}
	if g.location == "" {
		g.location = gce.ZoneName(inst.Zone)
	}
	return g, g.cluster != ""
}

// label is inst's label key, or "" when its value is not a GCE label value
// (a hostile API): such a value reaches no fix line, as inventory leaves
// it out of group names.
func label(inst *gce.Instance, key string) string {
	v := inst.Labels[key]
	if gce.CheckLabel(key, v) != nil {
		return ""
	}
	return v
}

// kubelet: the kubelet's read-only port, from kubelet-config and, when
// probed, live.
func (e *evaluation) kubelet(inst *gce.Instance) {
	var evidence []string
	open := false
	cfg, hasCfg := gce.MetadataValue(inst.Metadata, kubeletConfigAttribute)
	if hasCfg {
		port, ok := ReadOnlyPort(cfg)
		switch {
		case !ok:
			evidence = append(evidence, inst.Name+": kubelet-config has a readOnlyPort that is not a port number")
		case port != 0:
			open = true
			evidence = append(evidence, fmt.Sprintf("%s: kubelet-config sets readOnlyPort: %d", inst.Name, port))
		}
	}
	if p := e.in.Probes[inst.Name]; p != nil {
		switch {
		case p.ReadOnlyPort:
			open = true
			evidence = append(evidence, inst.Name+": GET http://127.0.0.1:10255/healthz through the node's sshd answered 200 without authentication")
			switch {
			case len(p.Requests) == 0:
				evidence = append(evidence, inst.Name+": kubelet_http_requests_total{server_type=\"readonly\"}: no requests besides audit's since the kubelet started")
			case earlierAudits(p.Requests):
				evidence = append(evidence, fmt.Sprintf("%s: kubelet_http_requests_total{server_type=\"readonly\"} %s: as many /healthz as /metrics requests and nothing else, "+
					"which is what earlier audits leave (one of each per audit)", inst.Name, requestList(p.Requests)))
			default:
				evidence = append(evidence, fmt.Sprintf("%s: in use: kubelet_http_requests_total{server_type=\"readonly\"} %s (audit's own requests taken out)", inst.Name, requestList(p.Requests)))
			}
		case open:
			evidence = append(evidence, inst.Name+": but 127.0.0.1:10255 refused the connection: the kubelet does not run with this configuration yet")
			open = false
		}
	}
	if !open {
		return
	}
	var fix []string
	if g, ok := gkeOf(inst); ok {
		p := e.in.Probes[inst.Name]
		fix = fixKubeletPort(g, p != nil && len(p.Requests) > 0 && !earlierAudits(p.Requests))
	}
	e.add(KubeletReadOnlyPort, High, "kubelet read-only port 10255 open (no authentication)", inst.Name, evidence, fix...)
}

// earlierAudits reports whether the read-only requests look like nothing
// but earlier audits': the counters cannot tell audit's scrapes from a
// workload's, but a workload rarely asks /healthz and /metrics equally
// often and nothing else.
func earlierAudits(reqs map[string]int64) bool {
	return len(reqs) == 2 && reqs["healthz"] > 0 && reqs["healthz"] == reqs["metrics"]
}

func requestList(reqs map[string]int64) string {
	var parts []string
	for _, path := range slices.Sorted(maps.Keys(reqs)) {
		parts = append(parts, fmt.Sprintf("path=%q %d", path, reqs[path]))
	}
	return strings.Join(parts, ", ")
}

// network: who reaches the node's tcp:22 by the firewall rules.
func (e *evaluation) network(inst *gce.Instance) {
	t := firewall.TargetOf(inst)
	network := cmp.Or(t.Network, "default")
	if v := firewall.Decide(e.rules, t, netip.MustParsePrefix("0.0.0.0/0"), "tcp", 22); v.Allowed {
		e.add(SSHOpenToInternet, High, "SSH (tcp:22) open to the internet", inst.Name,
			[]string{fmt.Sprintf("%s: from 0.0.0.0/0, %s", inst.Name, v)},
			fixOpenSSH(v.Rule.Name))
	}
	if v := firewall.Decide(e.rules, t, netip.MustParsePrefix(iapSource), "tcp", 22); !v.Allowed {
		e.add(IAPRangeMissing, Info, "IAP's range 35.235.240.0/20 cannot reach tcp:22 (IAP logins fail)", inst.Name,
			[]string{fmt.Sprintf("%s: from %s, %s", inst.Name, iapSource, v)}, IAPRuleFix(network, 22, v))
	}
	g, ok := gkeOf(inst)
	if !ok {
		return
	}
	pods, where := e.podRange(inst, g.cluster)
	if !pods.IsValid() {
		return
	}
	v := firewall.Decide(e.rules, t, pods, "tcp", 22)
	if !v.Allowed {
		return
	}
	evidence := []string{fmt.Sprintf("%s: from the pod range %s (%s), %s", inst.Name, pods, where, v)}
	if p := e.in.Probes[inst.Name]; p != nil {
		if p.SSHD == "" {
			return // nothing listens on the VPC address
		}
		evidence = append(evidence, fmt.Sprintf("%s: sshd answers on %s:22: %s", inst.Name, inst.NetworkInterfaces[0].NetworkIP, p.SSHD))
	}
	e.add(PodsReachSSHD, Medium, "pods can reach node sshd (tcp:22)", inst.Name, evidence,
		fixDenyPodSSH(g.cluster, network, pods, v.Rule.Priority, nodeTag(inst, g.cluster)))
}

// podRange is the cluster's pod range: kube-env's CLUSTER_IP_RANGE, else
// the source of GKE's gke-CLUSTER-HASH-all rule.
func (e *evaluation) podRange(inst *gce.Instance, cluster string) (netip.Prefix, string) {
	env, _ := gce.KubeEnv(inst.Metadata)
	if p, err := netip.ParsePrefix(env["CLUSTER_IP_RANGE"]); err == nil {
		return p.Masked(), "kube-env CLUSTER_IP_RANGE"
	}
	for _, r := range e.rules {
		rest, ok := strings.CutPrefix(r.Name, "gke-"+cluster+"-")
		if hash, ok2 := strings.CutSuffix(rest, "-all"); ok && ok2 && len(hash) == 8 && len(r.Sources) > 0 {
			return r.Sources[0], "source of GKE's rule " + r.Name
		}
	}
	return netip.Prefix{}, ""
}

// nodeTag is GKE's gke-CLUSTER-HASH-node tag on inst.
func nodeTag(inst *gce.Instance, cluster string) string {
	if inst.Tags == nil {
		return ""
	}
	for _, t := range inst.Tags.Items {
		if strings.HasPrefix(t, "gke-"+cluster+"-") && strings.HasSuffix(t, "-node") {
			return t
		}
	}
	return ""
}

// osLogin judges a node by how it takes keys, which access decides as its
// guest agent does (an instance enable-oslogin that parses wins, even
// false, else the project's). A node whose own value turns off the
// project's OS Login takes metadata keys despite it; a node under OS
// Login takes whoever IAM lets in.
func (e *evaluation) osLogin(inst *gce.Instance) {
	own, set := gce.MetadataValue(inst.Metadata, gce.KeyEnableOSLogin)
	switch {
	case access.ModeOf(inst, e.in.Project) == access.OSLogin:
		from := "the project's enable-oslogin=" + e.projectOSLogin()
		if set && access.ModeOf(inst, nil) == access.OSLogin {
			from = "its own enable-oslogin=" + own
		}
		e.add(OSLoginIAM, Info, "nodes under OS Login: IAM decides who logs in, metadata keys are ignored", inst.Name,
			[]string{inst.Name + ": under OS Login by " + from + ": logins need roles/compute.osLogin, sudo roles/compute.osAdminLogin"},
			fixReviewOSLoginIAM(e.in.Project)...)
	case set && access.ModeOf(nil, e.in.Project) == access.OSLogin:
		e.add(OSLoginIgnored, Medium, "nodes whose own enable-oslogin overrides the project's OS Login", inst.Name,
			[]string{fmt.Sprintf("%s: its own enable-oslogin=%s overrides the project's enable-oslogin=%s: its guest installs metadata SSH keys", inst.Name, own, e.projectOSLogin())},
			fixOSLogin(inst)...)
	}
}

// projectOSLogin is the project's enable-oslogin value, as set.
func (e *evaluation) projectOSLogin() string {
	if e.in.Project == nil {
		return ""
	}
	v, _ := gce.MetadataValue(e.in.Project.CommonInstanceMetadata, gce.KeyEnableOSLogin)
	return v
}

// metadataKeys reuses keys list --audit's judgement of each line.
func (e *evaluation) metadataKeys() {
	proj := e.entries(e.in.Project, nil)
	var readers []*gce.Instance // nodes that honour project keys
	var keyed []*gce.Instance   // nodes that take metadata keys at all
	for _, inst := range e.in.Instances {
		if access.ModeOf(inst, e.in.Project) == access.OSLogin {
			continue // its guest ignores metadata keys: judged by IAM (osLogin)
		}
		keyed = append(keyed, inst)
		if _, legacy := gce.MetadataValue(inst.Metadata, keys.LegacyMetadataKey); !gce.BlocksProjectSSHKeys(inst) && !legacy {
			readers = append(readers, inst)
		}
	}
	sudoUsers := map[string]bool{}
	for _, en := range proj {
		if en.Line.Valid() && !en.Line.Expired(e.in.Now) {
			sudoUsers[en.Line.User] = true
		}
	}
	if len(sudoUsers) > 0 && len(readers) > 0 {
		users := slices.Sorted(maps.Keys(sudoUsers))
		ev := []string{fmt.Sprintf("project ssh-keys grant %s sudo (google-sudoers) on every node without block-project-ssh-keys: %d %s", strings.Join(users, ", "), len(readers), nodeOrNodes(len(readers)))}
		var fix []string
		for _, u := range users {
			fix = append(fix, fixRemoveKeys(keys.ScopeProject, u, "", ""))
		}
		for _, inst := range readers {
			e.add(ProjectKeysSudo, Medium, "project-wide keys give sudo on every node", inst.Name, nil)
			e.add(ProjectKeysNotBlocked, Low, "nodes honour project-wide keys (no block-project-ssh-keys)", inst.Name,
				[]string{inst.Name + ": block-project-ssh-keys is not set"},
				fixBlockProjectKeys(inst))
		}
		e.found[ProjectKeysSudo].Evidence = ev
		e.found[ProjectKeysSudo].Fix = fix
	}
	lines := func(entries []keys.Entry, node string) {
		for _, en := range entries {
			where := en.Scope + " " + en.Item + " line " + fmt.Sprint(en.LineNo)
			if en.Instance != "" {
				where = en.Instance + ": " + where
			}
			l := en.Line
			switch {
			case !l.Valid():
			case !l.Expiring():
				e.add(KeysNeverExpire, Low, "metadata keys that never expire", node,
					[]string{fmt.Sprintf("%s: user %s, %s: %s", where, l.User, l.Key.Type(), strings.Join(en.Problems, "; "))},
					fixRemoveKeys(en.Scope, l.User, en.Instance, "then log in again: gkessh adds a line that expires"))
			case l.Expired(e.in.Now):
				e.add(KeysExpired, Low, "expired metadata keys still present", node,
					[]string{fmt.Sprintf("%s: user %s expired %s", where, l.User, l.ExpireOn.UTC().Format(time.RFC3339))},
					fixPruneExpired(en.Instance))
			}
			if en.Item == keys.LegacyMetadataKey {
				e.add(LegacySSHKeys, Medium, "legacy sshKeys metadata", node,
					[]string{where + ": legacy sshKeys item (on an instance it makes the guest ignore project keys)"}, fixLegacySSHKeys(en.Instance))
			}
		}
	}
	if len(readers) > 0 {
		lines(proj, "") // project lines matter only where a node reads them
	}
	for _, inst := range keyed {
		lines(e.entries(nil, inst), inst.Name)
	}
	// Project-scope findings apply to the nodes that read project keys.
	for _, id := range []string{KeysNeverExpire, KeysExpired, LegacySSHKeys} {
		if f := e.found[id]; f != nil && slices.ContainsFunc(f.Evidence, func(s string) bool { return strings.HasPrefix(s, keys.ScopeProject+" ") }) {
			for _, inst := range readers {
				f.Nodes = append(f.Nodes, inst.Name)
			}
		}
	}
}

// entries are keys list --audit's entries and problems, audit's own lines
// left out.
func (e *evaluation) entries(proj *gce.Project, inst *gce.Instance) []keys.Entry {
	en := metakeys.Entries(proj, inst)
	keys.Audit(en, e.in.Now)
	return slices.DeleteFunc(en, func(x keys.Entry) bool {
		return slices.ContainsFunc(e.in.Own, func(o Own) bool { return o.is(x) })
	})
}

// Own is an expiring line audit's own login used: the user's lines for
// Key in Scope (Instance's own metadata for keys.ScopeInstance).
type Own struct {
	Scope, Instance, User string
	Key                   ssh.PublicKey
}

func (o Own) is(x keys.Entry) bool {
	return x.Scope == o.Scope && (o.Scope != keys.ScopeInstance || x.Instance == o.Instance) &&
		x.Line.Valid() && x.Line.Expiring() && x.Line.User == o.User && keys.SameKey(x.Line.Key, o.Key)
}

// dedup keeps the first of each string, in order.
func dedup(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// nodeOrNodes is "node" for 1, else "nodes".
func nodeOrNodes(n int) string {
	if n == 1 {
		return "node"
	}
	return "nodes"
}
