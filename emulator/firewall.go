//go:build unix

package emulator

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// The VPC side of the emulated project: the default network, its firewall
// rules (the default network's own, the IAP rule IAP's documentation asks
// for, and GKE's rules for each cluster), and the network tags GKE gives
// its nodes.

// iapRange is where IAP's TCP forwarding connects from.
const iapRange = "35.235.240.0/20"

// vpc is the emulated project's network state.
type vpc struct {
	mu       sync.Mutex
	rules    map[string]*compute.Firewall // by name
	clusters map[string]*gkeCluster       // by cluster name
	created  time.Time
}

// gkeCluster is what GKE knows of a cluster that its firewall rules and
// node tags show.
type gkeCluster struct {
	Name     string `json:"name"`
	Hash     string `json:"hash"`     // the 8 hex digits GKE puts in rule and tag names
	PodRange string `json:"podRange"` // the cluster's pod IPv4 range (clusterIpv4Cidr)
	Tag      string `json:"tag"`      // the network tag of its nodes, gke-NAME-HASH-node
}

// initVPC creates the default network's rules and IAP's
// allow-ssh-ingress-from-iap rule.
func (s *Server) initVPC() {
	s.vpc.rules = map[string]*compute.Firewall{}
	s.vpc.clusters = map[string]*gkeCluster{}
	s.vpc.created = time.Now()
	all := []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"0-65535"}}, {IPProtocol: "udp", Ports: []string{"0-65535"}}, {IPProtocol: "icmp"}}
	for _, r := range []*compute.Firewall{
		{Name: "default-allow-internal", Description: "Allow internal traffic on the default network", Priority: 65534, SourceRanges: []string{"10.128.0.0/9"}, Allowed: all},
		{Name: "default-allow-ssh", Description: "Allow SSH from anywhere", Priority: 65534, SourceRanges: []string{"0.0.0.0/0"}, Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"22"}}}},
		{Name: "default-allow-rdp", Description: "Allow RDP from anywhere", Priority: 65534, SourceRanges: []string{"0.0.0.0/0"}, Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"3389"}}}},
		{Name: "default-allow-icmp", Description: "Allow ICMP from anywhere", Priority: 65534, SourceRanges: []string{"0.0.0.0/0"}, Allowed: []*compute.FirewallAllowed{{IPProtocol: "icmp"}}},
		{Name: "allow-ssh-ingress-from-iap", Priority: 1000, SourceRanges: []string{iapRange}, Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"22"}}}},
	} {
		s.putRule(r)
	}
}

// putRule adds or replaces a rule, filling what GCE fills. Call with
// s.vpc.mu held or before serving.
func (s *Server) putRule(r *compute.Firewall) {
	r.Kind = "compute#firewall"
	if old := s.vpc.rules[r.Name]; old != nil {
		r.Id, r.CreationTimestamp = old.Id, old.CreationTimestamp
	} else {
		s.mu.Lock()
		r.Id = s.newID()
		s.mu.Unlock()
		r.CreationTimestamp = time.Now().Format("2006-01-02T15:04:05.000-07:00")
	}
	if r.Network == "" {
		r.Network = s.projectURL() + "/global/networks/default"
	}
	if r.Direction == "" {
		r.Direction = "INGRESS"
	}
	if r.Priority == 0 && !slices.Contains(r.ForceSendFields, "Priority") {
		r.Priority = 1000
	}
	if r.LogConfig == nil {
		r.LogConfig = &compute.FirewallLogConfig{Enable: false, ForceSendFields: []string{"Enable"}}
	}
	r.SelfLink = s.projectURL() + "/global/firewalls/" + r.Name
	r.ForceSendFields = []string{"Disabled", "Priority"}
	s.vpc.rules[r.Name] = r
}

// joinCluster gives a new node its cluster: GKE's rules for the cluster
// on its first node, and the node's network tag.
func (s *Server) joinCluster(n *Node) {
	name := n.labels["goog-k8s-cluster-name"]
	if name == "" {
		return
	}
	s.vpc.mu.Lock()
	defer s.vpc.mu.Unlock()
	c := s.vpc.clusters[name]
	if c == nil {
		h := fnv.New32a()
		h.Write([]byte(s.cfg.Project + "/" + name))
		// GKE tags nodes gke-CLUSTER-UID[:8]-node, UID being the cluster-uid metadata.
		g, _ := parseGKENode(n.Name, n.Zone)
		c = &gkeCluster{Name: name, Hash: g.UID(s.cfg.Project)[:8]}
		c.Tag = fmt.Sprintf("gke-%s-%s-node", name, c.Hash)
		c.PodRange = fmt.Sprintf("10.%d.0.0/14", 4*(len(s.vpc.clusters)+1))
		s.vpc.clusters[name] = c
		prefix := fmt.Sprintf("gke-%s-%s-", name, c.Hash)
		tags := []string{c.Tag}
		for _, r := range []*compute.Firewall{
			{Name: prefix + "all", SourceRanges: []string{c.PodRange}, TargetTags: tags,
				Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp"}, {IPProtocol: "udp"}, {IPProtocol: "icmp"}, {IPProtocol: "esp"}, {IPProtocol: "ah"}, {IPProtocol: "sctp"}}},
			// Public clusters: the control plane's address only.
			{Name: prefix + "ssh", SourceRanges: []string{fmt.Sprintf("34.82.%d.%d/32", h.Sum32()%250, h.Sum32()/250%250+1)}, TargetTags: tags,
				Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"22"}}}},
			{Name: prefix + "vms", SourceRanges: []string{"10.128.0.0/9"}, TargetTags: tags,
				Allowed: []*compute.FirewallAllowed{{IPProtocol: "icmp"}, {IPProtocol: "tcp", Ports: []string{"1-65535"}}, {IPProtocol: "udp", Ports: []string{"1-65535"}}}},
			{Name: prefix + "inkubelet", Priority: 999, SourceRanges: []string{c.PodRange}, SourceTags: tags, TargetTags: tags,
				Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"10255"}}}},
			{Name: prefix + "exkubelet", SourceRanges: []string{"0.0.0.0/0"}, TargetTags: tags,
				Denied: []*compute.FirewallDenied{{IPProtocol: "tcp", Ports: []string{"10255"}}}},
		} {
			s.putRule(r)
		}
	}
	n.mu.Lock()
	n.tags = []string{c.Tag}
	n.changed()
	n.mu.Unlock()
}

// instanceTags renders a node's network tags; call with n.mu held.
func instanceTags(n *Node) *compute.Tags {
	if len(n.tags) == 0 {
		return nil
	}
	t := &compute.Tags{Items: slices.Clone(n.tags)}
	h := fnv.New64a()
	h.Write([]byte(strings.Join(n.tags, ",")))
	// GCE fingerprints are base64 of 8 bytes; gcloud refuses anything else.
	t.Fingerprint = base64.StdEncoding.EncodeToString(h.Sum(nil))
	return t
}

// rulesFor returns copies of the rules that apply to a node with these
// tags: those with no targets and those naming one of its tags, sorted by
// name as firewalls.list sorts them.
func (s *Server) rulesFor(tags []string) []*compute.Firewall {
	s.vpc.mu.Lock()
	defer s.vpc.mu.Unlock()
	var out []*compute.Firewall
	for _, r := range s.vpc.rules {
		if len(r.TargetTags) > 0 && !slices.ContainsFunc(r.TargetTags, func(t string) bool { return slices.Contains(tags, t) }) {
			continue
		}
		if len(r.TargetServiceAccounts) > 0 {
			continue // nodes run as the default service account, which no rule targets here
		}
		c := *r
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *compute.Firewall) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// iapAdmits is the emulator's own reading of the rules (it must not use
// gkessh's): does an ingress connection from anywhere in IAP's range reach
// port 22/tcp of a node with these tags?
func (s *Server) iapAdmits(tags []string, port int) bool {
	_, iap, _ := net.ParseCIDR(iapRange)
	return admits(s.rulesFor(tags), iap, port)
}

// admits reports whether rules let an ingress connection from all of src
// reach tcp port. Rules are taken by priority, a deny before an allow of
// equal priority; the first that matches decides, and none means GCE's
// implied deny.
func admits(rules []*compute.Firewall, src *net.IPNet, port int) bool {
	rules = slices.Clone(rules)
	slices.SortStableFunc(rules, func(a, b *compute.Firewall) int {
		if a.Priority != b.Priority {
			return int(a.Priority - b.Priority)
		}
		return len(b.Denied) - len(a.Denied)
	})
	for _, r := range rules {
		if r.Disabled || r.Direction != "INGRESS" || !coversNet(r.SourceRanges, src) {
			continue
		}
		for _, a := range r.Allowed {
			if protoPort(a.IPProtocol, a.Ports, port) {
				return true
			}
		}
		for _, d := range r.Denied {
			if protoPort(d.IPProtocol, d.Ports, port) {
				return false
			}
		}
	}
	return false
}

// coversNet reports whether one of the CIDR ranges holds all of n.
func coversNet(ranges []string, n *net.IPNet) bool {
	nOnes, _ := n.Mask.Size()
	for _, cidr := range ranges {
		_, r, err := net.ParseCIDR(cidr)
		if err != nil {
			continue
		}
		ones, _ := r.Mask.Size()
		if ones <= nOnes && r.Contains(n.IP) {
			return true
		}
	}
	return false
}

// protoPort reports whether a rule entry covers tcp port.
func protoPort(proto string, ports []string, port int) bool {
	if proto != "tcp" && proto != "all" && proto != "6" {
		return false
	}
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		lo, hi, found := strings.Cut(p, "-")
		if !found {
			hi = lo
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 == nil && err2 == nil && l <= port && port <= h {
			return true
		}
	}
	return false
}

// listFirewalls serves firewalls.list.
func (s *Server) listFirewalls(r *http.Request) (any, *apiError) {
	if err := require(r, "compute.firewalls.list", "projects/"+s.cfg.Project); err != nil {
		return nil, err
	}
	return &compute.FirewallList{
		Kind:     "compute#firewallList",
		Id:       "projects/" + s.cfg.Project + "/global/firewalls",
		Items:    s.FirewallRules(),
		SelfLink: s.projectURL() + "/global/firewalls",
	}, nil
}

// getNetwork serves networks.get for the default network, an auto-mode VPC.
func (s *Server) getNetwork(r *http.Request) (any, *apiError) {
	name := r.PathValue("network")
	resource := "projects/" + s.cfg.Project + "/global/networks/" + name
	if err := require(r, "compute.networks.get", resource); err != nil {
		return nil, err
	}
	if name != "default" {
		return nil, notFound(resource)
	}
	var subnets []string
	for _, z := range s.zones() {
		region := z[:max(strings.LastIndex(z, "-"), 0)]
		subnets = append(subnets, s.projectURL()+"/regions/"+region+"/subnetworks/default")
	}
	slices.Sort(subnets)
	s.mu.Lock()
	id := s.project.ID + 1
	s.mu.Unlock()
	return &compute.Network{
		Kind:                                  "compute#network",
		Id:                                    id,
		CreationTimestamp:                     s.vpc.created.Format("2006-01-02T15:04:05.000-07:00"),
		Name:                                  name,
		Description:                           "Default network for the project",
		SelfLink:                              s.projectURL() + "/global/networks/" + name,
		SelfLinkWithId:                        s.projectURL() + "/global/networks/" + strconv.FormatUint(id, 10),
		AutoCreateSubnetworks:                 true,
		Subnetworks:                           slices.Compact(subnets),
		RoutingConfig:                         &compute.NetworkRoutingConfig{RoutingMode: "REGIONAL"},
		NetworkFirewallPolicyEnforcementOrder: "AFTER_CLASSIC_FIREWALL",
	}, nil
}

// getEffectiveFirewalls serves instances.getEffectiveFirewalls: the VPC
// rules that apply to the interface's instance (no firewall policies).
func (s *Server) getEffectiveFirewalls(r *http.Request) (any, *apiError) {
	resource := fmt.Sprintf("projects/%s/zones/%s/instances/%s", s.cfg.Project, r.PathValue("zone"), r.PathValue("instance"))
	if err := require(r, "compute.instances.getEffectiveFirewalls", resource); err != nil {
		return nil, err
	}
	nic := r.URL.Query().Get("networkInterface")
	if nic == "" {
		return nil, &apiError{http.StatusBadRequest, "required", "Required field 'network_interface' not specified"}
	}
	s.mu.Lock()
	n, err := s.lookupNode(r)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if nic != "nic0" {
		return nil, invalid("Invalid value for field 'networkInterface': '%s'. The network interface does not exist.", nic)
	}
	return &compute.InstancesGetEffectiveFirewallsResponse{Firewalls: s.effectiveRules(n)}, nil
}

// effectiveRules are the VPC rules that apply to the node's nic0, with its
// closed IAP switch as a rule.
func (s *Server) effectiveRules(n *Node) []*compute.Firewall {
	n.mu.Lock()
	tags, open := slices.Clone(n.tags), n.firewall
	n.mu.Unlock()
	rules := s.rulesFor(tags)
	if !open {
		rules = append(rules, s.closedRule(n.Name))
	}
	return rules
}

// closedRule is how the node's closed IAP switch (Node.SetFirewall) shows
// in its effective rules, so that what reads them sees what the relay does.
func (s *Server) closedRule(node string) *compute.Firewall {
	r := &compute.Firewall{
		Name:         "gce-emulator-closed-" + node,
		Description:  "gce-emulator: the control API closed IAP's way to this node",
		Network:      s.projectURL() + "/global/networks/default",
		Direction:    "INGRESS",
		Priority:     1,
		SourceRanges: []string{iapRange},
		Denied:       []*compute.FirewallDenied{{IPProtocol: "all"}},
		LogConfig:    &compute.FirewallLogConfig{Enable: false, ForceSendFields: []string{"Enable"}},
	}
	r.Kind = "compute#firewall"
	r.SelfLink = s.projectURL() + "/global/firewalls/" + r.Name
	r.ForceSendFields = []string{"Disabled", "Priority"}
	return r
}

// FirewallRules returns the project's firewall rules, sorted by name.
func (s *Server) FirewallRules() []*compute.Firewall {
	s.vpc.mu.Lock()
	defer s.vpc.mu.Unlock()
	var out []*compute.Firewall
	for _, fw := range s.vpc.rules {
		c := *fw
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *compute.Firewall) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// PutFirewallRule adds or replaces a firewall rule by name; an empty
// network means the default network, an empty direction INGRESS, and a
// zero priority 1000 (send Priority in ForceSendFields for 0).
func (s *Server) PutFirewallRule(r *compute.Firewall) error {
	if r == nil || !validRuleName(r.Name) {
		return fmt.Errorf("emulator: firewall rule needs a name of lowercase letters, digits and '-'")
	}
	for _, cidr := range append(slices.Clone(r.SourceRanges), r.DestinationRanges...) {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			return fmt.Errorf("emulator: firewall rule %s: range %q: %v", r.Name, cidr, err)
		}
	}
	if r.Priority < 0 || r.Priority > 65535 {
		return fmt.Errorf("emulator: firewall rule %s: priority %d is not 0-65535", r.Name, r.Priority)
	}
	c := *r
	s.vpc.mu.Lock()
	defer s.vpc.mu.Unlock()
	s.putRule(&c)
	return nil
}

// DeleteFirewallRule removes a rule.
func (s *Server) DeleteFirewallRule(name string) error {
	s.vpc.mu.Lock()
	defer s.vpc.mu.Unlock()
	if s.vpc.rules[name] == nil {
		return fmt.Errorf("emulator: no firewall rule %s", name)
	}
	delete(s.vpc.rules, name)
	return nil
}

// Clusters returns the GKE clusters the nodes belong to, by name.
func (s *Server) Clusters() map[string]gkeCluster {
	s.vpc.mu.Lock()
	defer s.vpc.mu.Unlock()
	out := map[string]gkeCluster{}
	for name, c := range s.vpc.clusters {
		out[name] = *c
	}
	return out
}

func validRuleName(name string) bool {
	if name == "" || len(name) > 63 || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	return strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// ctlPutFirewall adds or replaces a rule given as Compute's JSON.
func (s *Server) ctlPutFirewall(r *http.Request) (any, *apiError) {
	var fw compute.Firewall
	if err := decodeBody(r, &fw); err != nil {
		return nil, err
	}
	if err := s.PutFirewallRule(&fw); err != nil {
		return nil, invalid("%v", err)
	}
	return s.FirewallRules(), nil
}

func (s *Server) ctlDeleteFirewall(r *http.Request) (any, *apiError) {
	if err := s.DeleteFirewallRule(r.PathValue("name")); err != nil {
		return nil, notFound("firewalls/" + r.PathValue("name"))
	}
	return nil, nil
}
