//go:build unix

package emulator

import (
	"cmp"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	compute "google.golang.org/api/compute/v1"
)

// controlRoutes maps the control API: plain JSON, no auth, loopback only.
// Errors use the same Google JSON error body as the Compute API.
func (s *Server) controlRoutes() *http.ServeMux {
	m := http.NewServeMux()
	route := func(pattern string, h func(*http.Request) (any, *apiError)) {
		m.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			v, err := h(r)
			switch {
			case err != nil:
				writeAPIError(w, err)
			case v == nil:
				w.WriteHeader(http.StatusNoContent)
			default:
				writeJSON(w, http.StatusOK, v)
			}
		})
	}
	route("GET /control/nodes", s.ctlListNodes)
	route("POST /control/nodes", s.ctlAddNode)
	route("GET /control/nodes/{name}", s.ctlNode(func(n *Node, _ *http.Request) (any, *apiError) { return n.Info(), nil }))
	route("POST /control/nodes/{name}", s.ctlNode(s.ctlPatchNode))
	route("DELETE /control/nodes/{name}", s.ctlRemoveNode)
	route("GET /control/nodes/{name}/keys", s.ctlNode(func(n *Node, _ *http.Request) (any, *apiError) { return n.AuthorizedKeys(), nil }))
	route("GET /control/nodes/{name}/invalid-keys", s.ctlNode(func(n *Node, _ *http.Request) (any, *apiError) { return n.InvalidKeys(), nil }))
	route("GET /control/project", s.ctlProject)
	route("POST /control/project", s.ctlPatchProject)
	route("GET /control/faults", func(*http.Request) (any, *apiError) { return s.Faults(), nil })
	route("POST /control/faults", s.ctlSetFaults)
	route("GET /control/propagation", s.ctlPropagation)
	route("POST /control/propagation", s.ctlSetPropagation)
	route("GET /control/stats", func(*http.Request) (any, *apiError) { return s.Stats(), nil })
	route("POST /control/stats/reset", func(*http.Request) (any, *apiError) { s.ResetStats(); return s.Stats(), nil })
	route("GET /control/requests", func(*http.Request) (any, *apiError) { return s.Requests(), nil })
	route("POST /control/requests/reset", func(*http.Request) (any, *apiError) { s.ResetRequests(); return nil, nil })
	route("POST /control/tokens", s.ctlAddToken)
	route("GET /control/firewalls", func(*http.Request) (any, *apiError) { return s.FirewallRules(), nil })
	route("POST /control/firewalls", s.ctlPutFirewall)
	route("DELETE /control/firewalls/{name}", s.ctlDeleteFirewall)
	route("GET /control/clusters", func(*http.Request) (any, *apiError) { return s.Clusters(), nil })
	route("POST /control/nodes/{name}/kubelet", s.ctlKubelet)
	route("POST /control/pools/{pool}/kubelet", s.ctlKubelet)
	route("POST /control/nodes/{name}/serial", s.ctlNode(s.ctlAppendSerial))
	route("GET /control/oauth", s.ctlOAuth)
	route("POST /control/oauth", s.ctlSetOAuth)
	route("POST /control/accounts", s.ctlAddAccount)
	route("POST /control/services", s.ctlSetServices)
	return m
}

// serveControl serves the control API to loopback clients that present the
// control secret. It sets metadata and mints tokens, and the nodes run
// every session as the emulator's OS user, so without the secret any local
// user would get a shell as that user.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		writeAPIError(w, &apiError{http.StatusForbidden, "forbidden", "the control API serves loopback clients only"})
		return
	}
	got, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !bearer || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.ControlSecret)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gce-emulator control"`)
		writeAPIError(w, &apiError{http.StatusUnauthorized, "unauthorized", "the control API needs the header Authorization: Bearer $GCE_EMULATOR_CONTROL_SECRET"})
		return
	}
	if _, pattern := s.control.Handler(r); pattern == "" {
		writeAPIError(w, &apiError{http.StatusNotFound, "notFound", fmt.Sprintf("no control method %s %s", r.Method, r.URL.Path)})
		return
	}
	s.control.ServeHTTP(w, r)
}

// NodeInfo describes a node, as the control API lists it.
type NodeInfo struct {
	Name      string `json:"name"`
	Zone      string `json:"zone"`
	ID        uint64 `json:"id,string"`
	Status    string `json:"status"`    // RUNNING or TERMINATED
	SSHAddr   string `json:"sshAddr"`   // where its SSH server listens, "" while stopped
	Firewall  bool   `json:"firewall"`  // the IAP firewall rule is open
	NetworkIP string `json:"networkIP"` // its internal IP in the Compute API
	// Ports are the node ports besides 22 the relay forwards, to local
	// addresses: "8080" -> "127.0.0.1:9000"; {} for none.
	Ports map[string]string `json:"ports"`
}

// Info describes the node.
func (n *Node) Info() NodeInfo {
	addr := n.SSHAddr()
	n.mu.Lock()
	defer n.mu.Unlock()
	info := NodeInfo{Name: n.Name, Zone: n.Zone, ID: n.ID, Status: n.status, SSHAddr: addr, Firewall: n.firewall, NetworkIP: n.ip,
		Ports: map[string]string{}}
	for port, to := range n.ports {
		info.Ports[strconv.Itoa(port)] = to
	}
	return info
}

// SetLabels replaces the node's labels.
func (n *Node) SetLabels(labels map[string]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.labels = maps.Clone(labels)
	n.changed()
}

// SetNetworkIP sets the internal IP the Compute API reports for the node.
func (n *Node) SetNetworkIP(ip string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ip = ip
	n.changed()
}

// SetStatus sets the instance status the Compute API reports and the IAP
// relay checks: RUNNING or TERMINATED.
func (n *Node) SetStatus(status string) error {
	if status != "RUNNING" && status != "TERMINATED" {
		return fmt.Errorf("emulator: node %s: status %q is not RUNNING or TERMINATED", n.Name, status)
	}
	n.mu.Lock()
	n.status = status
	n.changed()
	n.mu.Unlock()
	return nil
}

// SetFirewall opens or closes the ingress rule that lets IAP
// (35.235.240.0/20) reach the node's port 22.
func (n *Node) SetFirewall(open bool) {
	n.mu.Lock()
	n.firewall = open
	n.mu.Unlock()
}

// SetSSHD starts or stops the node's SSH server; its host keys and installed
// keys stay.
func (n *Node) SetSSHD(running bool) error {
	n.mu.Lock()
	sshd := n.sshd
	n.mu.Unlock()
	if sshd == nil {
		return fmt.Errorf("emulator: node %s has no SSH server", n.Name)
	}
	op, do := "stop", sshd.Stop
	if running {
		op, do = "start", sshd.Start
	}
	if err := do(); err != nil {
		return fmt.Errorf("emulator: %s sshd of node %s: %w", op, n.Name, err)
	}
	return nil
}

// AuthorizedKeys returns the keys the guest agent installed as
// authorized_keys lines, by user.
func (n *Node) AuthorizedKeys() map[string][]string {
	out := map[string][]string{}
	for user, ks := range n.InstalledKeys() {
		for _, k := range ks {
			out[user] = append(out[user], strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(k)), "\n"))
		}
	}
	return out
}

// InvalidKey is a metadata key line the guest agent found invalid, and why.
type InvalidKey struct {
	Line   string `json:"line"`
	Reason string `json:"reason"`
}

// InvalidKeys returns the lines the node's guest agent found invalid
// (expired ones too), sorted. Like Google's agent it remembers them for as
// long as it runs, after they leave the metadata too, and never reads them
// again.
func (n *Node) InvalidKeys() []InvalidKey {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := []InvalidKey{}
	for _, line := range slices.Sorted(maps.Keys(n.invalidKeys)) {
		out = append(out, InvalidKey{line, n.invalidKeys[line]})
	}
	return out
}

// Faults returns the injected faults still pending.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// PropagationDelay returns how long a metadata change takes to reach the nodes.
func (s *Server) PropagationDelay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delay
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.apiCalls.Store(0)
	s.rateLimited.Store(0)
	s.metadataWrites.Store(0)
	s.tunnels.Store(0)
	s.resetPrincipalStats()
	s.resetClientCertStats()
	s.relay.throttled.Store(0)
}

func (s *Server) ctlListNodes(*http.Request) (any, *apiError) {
	infos := []NodeInfo{}
	for _, n := range s.nodeList() {
		infos = append(infos, n.Info())
	}
	return infos, nil
}

// ctlAddNode adds a node; with no name it takes the next free GKE-looking
// name (and that name's zone, unless one is given). Names, zones and labels
// are taken as they are, outside GCE's grammar too, so tests can play a
// hostile API.
func (s *Server) ctlAddNode(r *http.Request) (any, *apiError) {
	var req struct {
		Name, Zone string
		Labels     map[string]string // replace GKE's labels
	}
	if r.ContentLength != 0 { // an empty body adds the next GKE node
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
	}
	for i := 0; req.Name == ""; i++ {
		name, zone := gkeNodeName(i)
		if zone = cmp.Or(req.Zone, zone); s.NodeIn(zone, name) == nil {
			req.Name, req.Zone = name, zone
		}
	}
	n, err := s.AddNode(req.Name, req.Zone)
	if err != nil {
		return nil, invalid("%v", err)
	}
	if req.Labels != nil {
		n.SetLabels(req.Labels)
	}
	return n.Info(), nil
}

func (s *Server) ctlRemoveNode(r *http.Request) (any, *apiError) {
	n, err := s.ctlFindNode(r)
	if err != nil {
		return nil, err
	}
	s.removeNode(n)
	return nil, nil
}

// ctlFindNode finds the node named in the path, in the zone ?zone= names;
// without one, the name must be in one zone only.
func (s *Server) ctlFindNode(r *http.Request) (*Node, *apiError) {
	name, zone := r.PathValue("name"), r.URL.Query().Get("zone")
	n, err := s.findNode(name, zone)
	var amb *ambiguousNodeError
	switch {
	case err == nil:
		return n, nil
	case errors.As(err, &amb):
		return nil, &apiError{http.StatusConflict, "ambiguous", err.Error() + " with ?zone="}
	}
	return nil, notFound("nodes/" + name)
}

// ctlNode wraps a handler of the node named in the path.
func (s *Server) ctlNode(h func(*Node, *http.Request) (any, *apiError)) func(*http.Request) (any, *apiError) {
	return func(r *http.Request) (any, *apiError) {
		n, err := s.ctlFindNode(r)
		if err != nil {
			return nil, err
		}
		return h(n, r)
	}
}

// nodePatch changes a node; absent fields stay as they are.
type nodePatch struct {
	Status   string             `json:"status"`   // RUNNING or TERMINATED
	Firewall *bool              `json:"firewall"` // open or close the IAP rule
	SSHD     string             `json:"sshd"`     // running or stopped
	Metadata map[string]*string `json:"metadata"` // instance attributes; null deletes
	Ports    map[string]string  `json:"ports"`    // node port -> local address; "" stops
	// NetworkIP replaces the internal IP, e.g. with 127.0.0.1 to reach the
	// node's sshd (at its sshAddr's port) as --internal-ip would over a VPN.
	NetworkIP string `json:"networkIP"`
	// CPU is the utilization, 0 to 1, Cloud Monitoring reports (troubleshoot.go).
	CPU *float64 `json:"cpu"`
}

func (s *Server) ctlPatchNode(n *Node, r *http.Request) (any, *apiError) {
	var p nodePatch
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if p.SSHD != "" && p.SSHD != "running" && p.SSHD != "stopped" {
		return nil, invalid("sshd %q is not running or stopped", p.SSHD)
	}
	if p.CPU != nil && (*p.CPU < 0 || *p.CPU > 1) {
		return nil, invalid("cpu %v is not a utilization from 0 to 1", *p.CPU)
	}
	if ip := net.ParseIP(p.NetworkIP); p.NetworkIP != "" && (ip == nil || ip.To4() == nil) {
		return nil, invalid("networkIP %q is not an IPv4 address", p.NetworkIP)
	}
	ports := map[int]string{}
	for k, to := range p.Ports {
		port, err := strconv.Atoi(k)
		if err != nil || port < 1 || port > 65535 || port == 22 {
			return nil, invalid("port %q: want 1-65535, not 22 (the node's sshd)", k)
		}
		if _, _, err := net.SplitHostPort(to); to != "" && err != nil {
			return nil, invalid("port %s: forward to %q: %v", k, to, err)
		}
		ports[port] = to
	}
	if p.Status != "" {
		if err := n.SetStatus(p.Status); err != nil {
			return nil, invalid("%v", err)
		}
	}
	if p.Metadata != nil {
		if err := s.setNodeMetadata(n, p.Metadata); err != nil {
			return nil, invalid("%v", err)
		}
	}
	if p.Firewall != nil {
		n.SetFirewall(*p.Firewall)
	}
	for port, to := range ports {
		n.ForwardPort(port, to)
	}
	if p.NetworkIP != "" {
		n.SetNetworkIP(p.NetworkIP)
	}
	if p.CPU != nil {
		n.SetCPU(*p.CPU)
	}
	if p.SSHD != "" {
		if err := n.SetSSHD(p.SSHD == "running"); err != nil {
			return nil, &apiError{http.StatusConflict, "failedPrecondition", err.Error()}
		}
	}
	return n.Info(), nil
}

// projectInfo is the project as the control API shows it.
type projectInfo struct {
	Name     string            `json:"name"`
	Metadata *compute.Metadata `json:"metadata"`
}

func (s *Server) ctlProject(*http.Request) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return projectInfo{s.project.Name, cloneMetadata(&s.project.Metadata)}, nil
}

func (s *Server) ctlPatchProject(r *http.Request) (any, *apiError) {
	var p struct {
		Metadata map[string]*string `json:"metadata"`
	}
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := s.SetProjectMetadata(p.Metadata); err != nil {
		return nil, invalid("%v", err)
	}
	return s.ctlProject(r)
}

func (s *Server) ctlSetFaults(r *http.Request) (any, *apiError) {
	var f Faults
	if err := decodeBody(r, &f); err != nil {
		return nil, err
	}
	if f.DropAfterBytes < 0 || f.SilentAfterBytes < 0 || f.MetadataConflicts < 0 || f.TunnelRate < 0 || f.APIRate < 0 {
		return nil, invalid("faults must not be negative: %+v", f)
	}
	switch f.GuestAttributesStatus {
	case 0, http.StatusForbidden, http.StatusInternalServerError, http.StatusServiceUnavailable:
	default:
		return nil, invalid("guestAttributesStatus %d: want 0, 403, 500 or 503", f.GuestAttributesStatus)
	}
	s.SetFaults(f)
	return s.Faults(), nil
}

// propagation is the guest agents' delay as the control API shows it.
type propagation struct {
	Delay string `json:"delay"` // a Go duration: "1s", "250ms"
}

func (s *Server) ctlPropagation(*http.Request) (any, *apiError) {
	return propagation{s.PropagationDelay().String()}, nil
}

func (s *Server) ctlSetPropagation(r *http.Request) (any, *apiError) {
	var p propagation
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	d, err := time.ParseDuration(p.Delay)
	if err != nil || d < 0 {
		return nil, invalid("delay %q is not a duration like 1s or 250ms", p.Delay)
	}
	s.SetPropagationDelay(d)
	return s.ctlPropagation(r)
}

// ctlAddToken adds a bearer token (random when not given) with a Grant:
// projects (with none, the Compute API answers it 403), optional principal,
// permissions (absent: all) and expiresIn.
func (s *Server) ctlAddToken(r *http.Request) (any, *apiError) {
	var req struct {
		Token string `json:"token"`
		Grant
		ExpiresIn string `json:"expiresIn"` // a duration from now, like 3s
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.Token == "" {
		req.Token = "emu-" + randomHex(16)
	}
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil {
			return nil, invalid("expiresIn %q is not a duration like 3s", req.ExpiresIn)
		}
		req.Expiry = time.Now().Add(d)
	}
	s.AddGrant(req.Token, req.Grant)
	return map[string]string{"token": req.Token}, nil
}

// SetInstanceMetadata changes the named node's metadata attributes without a
// fingerprint: a nil value deletes the key. It changes the fingerprint and
// wakes the guest agents, but is not counted as a metadata write.
func (s *Server) SetInstanceMetadata(node string, attrs map[string]*string) error {
	n, err := s.findNode(node, "")
	if err != nil {
		return err
	}
	return s.setNodeMetadata(n, attrs)
}

func (s *Server) setNodeMetadata(n *Node, attrs map[string]*string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.changed()
	return s.patchMetadata(&n.metadata, attrs)
}

// SetProjectMetadata is SetInstanceMetadata for the project's metadata.
func (s *Server) SetProjectMetadata(attrs map[string]*string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.patchMetadata(&s.project.Metadata, attrs)
}

// copyOf returns a pointer to a copy of v: metadata must not share the
// caller's string variable, which the caller may change later.
func copyOf(v string) *string { return &v }

// patchMetadata sets or (nil values) deletes attrs in md, keeping the order
// of the keys that stay and appending new ones sorted. Call with s.mu held.
func (s *Server) patchMetadata(md *compute.Metadata, attrs map[string]*string) error {
	var items []*compute.MetadataItems
	for _, it := range md.Items {
		v, patched := attrs[it.Key]
		switch {
		case !patched:
			items = append(items, it)
		case v != nil:
			items = append(items, &compute.MetadataItems{Key: it.Key, Value: copyOf(*v)})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		if _, exists := metadataValue(md, k); !exists && attrs[k] != nil {
			items = append(items, &compute.MetadataItems{Key: k, Value: copyOf(*attrs[k])})
		}
	}
	if err := validateMetadata(items); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	s.writeMetadata(md, items)
	return nil
}
