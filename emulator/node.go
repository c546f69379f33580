//go:build unix

package emulator

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	compute "google.golang.org/api/compute/v1"
)

// Node is one emulated VM: its instance resource, its guest agent and its
// SSH server.
type Node struct {
	Name string
	Zone string
	ID   uint64

	srv *Server

	mu       sync.Mutex
	ip       string // networkInterfaces[0].networkIP
	labels   map[string]string
	metadata compute.Metadata
	status   string                     // RUNNING, TERMINATED
	firewall bool                       // an ingress rule allows 35.235.240.0/20 on tcp:22
	ports    map[int]string             // extra node ports the relay forwards to, port -> local addr
	keys     map[string][]ssh.PublicKey // installed by the guest agent, by user
	// invalidKeys are the metadata key lines the guest agent found
	// invalid and remembers, with why (guest.go).
	invalidKeys map[string]string
	tags        []string // network tags (firewall.go)
	kubelet     *kubelet // the kubelet stub (kubelet.go)
	sshd        nodeSSHD
	stop        func() // stops the guest agent
	// rendered is the instance resource as last rendered (Server.instance);
	// nil once anything it shows changed (changed).
	rendered *renderedInstance
}

// nodeSSHD is a node's SSH server as the rest of the emulator sees it.
type nodeSSHD interface {
	// Addr is where the server listens, "" while stopped.
	Addr() string
	// HostKeys are the public host keys, published as guest attributes.
	HostKeys() []ssh.PublicKey
	// SetAuthorized installs the keys the guest agent computed, by user.
	SetAuthorized(map[string][]ssh.PublicKey) error
	// Start and Stop start and stop listening; the host keys stay.
	Start() error
	Stop() error
	// Close stops the server for good and removes its files.
	Close() error
}

// nodeKey is a node's key in Server.nodes: instance names are unique per
// zone, as in GCE, not per project.
func nodeKey(zone, name string) string { return zone + "/" + name }

// AddNode creates a RUNNING node with its SSH server and guest agent. Its
// name must be new in its zone; another zone may have a node of the same
// name, as in GCE.
func (s *Server) AddNode(name, zone string) (*Node, error) {
	if name == "" || zone == "" {
		return nil, fmt.Errorf("emulator: node needs a name and a zone")
	}
	s.mu.Lock()
	if _, ok := s.nodes[nodeKey(zone, name)]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("emulator: node %s exists in %s", name, zone)
	}
	s.nodeSeq++
	n := &Node{
		Name:     name,
		Zone:     zone,
		ID:       s.newID(),
		srv:      s,
		ip:       fmt.Sprintf("10.128.%d.%d", s.nodeSeq/250, s.nodeSeq%250+2),
		labels:   map[string]string{},
		status:   "RUNNING",
		firewall: true,
		ports:    map[int]string{},
		keys:     map[string][]ssh.PublicKey{},
		metadata: compute.Metadata{Kind: "compute#metadata"},
	}
	n.metadata.Items = []*compute.MetadataItems{
		{Key: "enable-guest-attributes", Value: ptr("TRUE")},
	}
	g, gke := parseGKENode(name, zone)
	if gke {
		n.labels = g.labels(s.cfg.Project)
		n.metadata.Items = append(n.metadata.Items, g.metadata(s.cfg.Project, s.project.ID)...)
		slices.SortFunc(n.metadata.Items, func(a, b *compute.MetadataItems) int { return strings.Compare(a.Key, b.Key) })
	}
	n.metadata.Fingerprint = fingerprint(&n.metadata)
	s.nodes[nodeKey(zone, name)] = n
	s.mu.Unlock()
	s.joinCluster(n)
	if gke { // a plain VM runs no kubelet and has no kubelet-config
		if err := s.startNodeKubelet(n); err != nil {
			s.removeNode(n)
			return nil, fmt.Errorf("emulator: node %s: %w", name, err)
		}
	}

	sshd, err := s.newSSHD(n)
	if err != nil {
		s.removeNode(n)
		return nil, fmt.Errorf("emulator: node %s: %w", name, err)
	}
	n.mu.Lock()
	n.sshd = sshd
	n.mu.Unlock()
	n.stop = s.startGuest(n)
	return n, nil
}

// RemoveNode deletes the node of that name (see Node) and stops its
// services.
func (s *Server) RemoveNode(name string) error {
	n, err := s.findNode(name, "")
	if err != nil {
		return err
	}
	s.removeNode(n)
	return nil
}

func (s *Server) removeNode(n *Node) {
	s.mu.Lock()
	if s.nodes[nodeKey(n.Zone, n.Name)] == n {
		delete(s.nodes, nodeKey(n.Zone, n.Name))
	}
	s.mu.Unlock()
	s.serial.mu.Lock()
	delete(s.serial.byNode, n)
	s.serial.mu.Unlock()
	n.close()
}

// findNode returns the node called name in zone, or with zone "" the one
// node of that name in any zone; a name in several zones then is an
// error naming them, as gcloud's would be without a zone.
func (s *Server) findNode(name, zone string) (*Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if zone != "" {
		if n := s.nodes[nodeKey(zone, name)]; n != nil {
			return n, nil
		}
		return nil, fmt.Errorf("emulator: no node %s in %s", name, zone)
	}
	var found []*Node
	for _, n := range s.nodes {
		if n.Name == name {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("emulator: no node %s", name)
	case 1:
		return found[0], nil
	}
	e := &ambiguousNodeError{name: name}
	for _, n := range found {
		e.zones = append(e.zones, n.Zone)
	}
	slices.Sort(e.zones)
	return nil, e
}

// ambiguousNodeError is a node name in several zones, asked for without
// a zone.
type ambiguousNodeError struct {
	name  string
	zones []string
}

func (e *ambiguousNodeError) Error() string {
	return fmt.Sprintf("emulator: node %s is in zones %s: name the zone", e.name, strings.Join(e.zones, ", "))
}

func (n *Node) close() {
	if n.stop != nil {
		n.stop()
	}
	n.mu.Lock()
	sshd, k := n.sshd, n.kubelet
	n.mu.Unlock()
	if sshd != nil {
		sshd.Close()
	}
	if k != nil {
		k.close()
	}
}

// SSHAddr returns where the node's SSH server listens, "" while stopped.
func (n *Node) SSHAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sshd == nil {
		return ""
	}
	return n.sshd.Addr()
}

// HostKeys returns the node's public host keys.
func (n *Node) HostKeys() []ssh.PublicKey {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sshd == nil {
		return nil
	}
	return n.sshd.HostKeys()
}

// InstalledKeys returns the keys the guest agent installed, by user.
func (n *Node) InstalledKeys() map[string][]ssh.PublicKey {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string][]ssh.PublicKey, len(n.keys))
	for u, ks := range n.keys {
		out[u] = append([]ssh.PublicKey(nil), ks...)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
