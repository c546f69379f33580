//go:build unix

// Package emulator is a local stand-in for the Google services gkessh talks
// to: a Compute Engine API subset, the IAP TCP-forwarding relay, and, per
// node, the guest accounts daemon and an SSH server. It speaks Google's wire
// formats, so Google's own clients work against it unchanged.
//
// A Server is an http.Handler serving three trees:
//
//	/compute/v1/...          Compute API (compute.go)
//	/v4/connect, /v4/reconnect  IAP relay websocket (iap.go)
//	/control/...             fault injection and inspection (control.go)
//	/v3/..., /v1/...         testIamPermissions of Resource Manager, IAM, IAP (iam.go)
package emulator

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// Config describes the emulated project.
type Config struct {
	Project          string        // project name; "demo-project" when empty
	Token            string        // bearer token allowed on Project; random when empty
	ControlSecret    string        // bearer secret the control API requires; random when empty
	Nodes            int           // GKE-looking nodes created by New
	SSHD             string        // "builtin" (default) or "openssh"
	PropagationDelay time.Duration // guest agent delay before keys work; 0 means none
	Dir              string        // state directory, keeping node host keys across runs; a temp dir removed by Close when empty
	AckIdle          time.Duration // the relay's ACK cadence when Faults.AckIdle is zero; see there
	TLS              bool          // serve HTTPS and wss:// under the emulator's own CA (tls.go): TLSConfig, CAFile
	MTLS             bool          // TLS with certificate-based access: a client certificate from the emulator's device CA, or Google's refusals (tls.go); MTLSConfig, ClientCertFiles
	Logf             func(format string, args ...any)
}

// Server is the emulator. Create it with New; it is safe for concurrent use.
type Server struct {
	cfg     Config
	gzip    gzipCache // compressed answers (gzip.go)
	dir     string
	tempDir bool
	mux     *http.ServeMux
	journal journal // the API requests received (journal.go)

	compute *http.ServeMux // Compute API routes (compute.go)
	control *http.ServeMux // control API routes (control.go)

	// mu guards the fields below and every node's metadata writes; lock
	// order is s.mu before Node.mu.
	mu      sync.Mutex
	project *Project
	nodes   map[string]*Node  // by nodeKey: zone and name
	tokens  map[string]*grant // bearer token -> what it may do (grants.go)
	oslogin osLoginUsers      // OS Login profiles' keys (oslogin.go)
	// posixNames override the POSIX user names of OS Login profiles
	// (SetPosixUsername).
	posixNames map[string]string
	changed    chan struct{} // closed and replaced on each metadata change
	delay      time.Duration
	faults     Faults
	nextID     uint64
	nodeSeq    int                           // nodes ever added, for their internal IPs
	ops        map[string]*compute.Operation // finished operations, by name

	// Counters read by tests and the control API.
	apiCalls       atomic.Int64
	rateLimited    atomic.Int64 // calls answered 429
	metadataWrites atomic.Int64
	tunnels        atomic.Int64

	quota  quota       // the Compute API's rate limit (ratelimit.go)
	relay  relay       // live IAP tunnels (iap.go)
	vpc    vpc         // network, firewall rules, GKE clusters (firewall.go)
	serial serialPorts // nodes' serial port output (serial.go)

	trouble troubleState // what gcloud's troubleshooter reads (troubleshoot.go)

	oauth oauthState // token endpoint and impersonation (oauth.go)
	tls   *tlsState  // certificates under Config.TLS (tls.go); nil without
}

// Project is the emulated project's state.
type Project struct {
	Name     string
	ID       uint64
	Metadata compute.Metadata
}

// Faults are injected failures, set through the control API or SetFaults.
type Faults struct {
	// DropAfterBytes makes the relay drop every tunnel websocket, without a
	// close frame, after relaying this many bytes on it (0: never).
	DropAfterBytes int64 `json:"dropAfterBytes"`
	// SilentAfterBytes makes every tunnel the relay opens go silent after
	// this many bytes either way on its first websocket (0: never): the
	// relay acknowledges and sends nothing more on it, and keeps it open
	// until the client closes it. A reconnect gets a working websocket.
	SilentAfterBytes int64 `json:"silentAfterBytes"`
	// AckIdle makes tunnels the relay opens acknowledge the client's
	// bytes only once 32 KiB are owed or after this long without DATA from
	// it, instead of at once (0: Config.AckIdle). IAP's cadence for small
	// sends is not documented; this is the lazy end of what it could be.
	// In JSON a duration string, like "90s".
	AckIdle time.Duration `json:"ackIdle"`
	// TunnelRate is how many tunnel websockets (connects and reconnects)
	// the relay takes a second; past it the upgrade is refused with HTTP
	// 429, as IAP throttles (0: no limit). See tunnelRate in iap.go.
	TunnelRate int `json:"tunnelRate"`
	// MetadataConflicts makes the next N metadata writes fail with 412.
	MetadataConflicts int `json:"metadataConflicts"`
	// APIRate is how many Compute API calls a second the project's quota
	// allows (0: no limit); calls over it get GCE's 429 RESOURCE_EXHAUSTED
	// (ratelimit.go). A second's worth may come at once.
	APIRate float64 `json:"apiRate"`
	// GuestAttributesStatus makes every getGuestAttributes fail with this
	// HTTP status, 403 (the permission missing) or 500 or 503 (GCE's
	// internal error); 0: none. What real GCE answers for a node whose
	// guest attributes are off is not documented; a client has to get
	// through any answer, not only the 404 for attributes never written.
	GuestAttributesStatus int `json:"guestAttributesStatus"`
}

// New builds the emulator and starts Config.Nodes nodes.
func New(cfg Config) (*Server, error) {
	if cfg.Project == "" {
		cfg.Project = "demo-project"
	}
	if cfg.Token == "" {
		cfg.Token = "emu-" + randomHex(16)
	}
	if cfg.ControlSecret == "" {
		cfg.ControlSecret = randomHex(16)
	}
	if cfg.SSHD == "" {
		cfg.SSHD = "builtin"
	}
	if cfg.SSHD != "builtin" && cfg.SSHD != "openssh" {
		return nil, fmt.Errorf("emulator: unknown sshd mode %q (want builtin or openssh)", cfg.SSHD)
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	s := &Server{
		cfg:     cfg,
		dir:     cfg.Dir,
		nodes:   map[string]*Node{},
		oslogin: osLoginUsers{},
		tokens:  map[string]*grant{cfg.Token: newGrant(Grant{Principal: "owner@" + cfg.Project + ".example", Projects: []string{cfg.Project}})},
		changed: make(chan struct{}),
		delay:   cfg.PropagationDelay,
		nextID:  1000000000000000000,
		ops:     map[string]*compute.Operation{},
	}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "gce-emulator-")
		if err != nil {
			return nil, fmt.Errorf("emulator: %w", err)
		}
		s.dir, s.tempDir = d, true
		s.nextID = runIDBase() // fresh host keys: ids of this run's own
	}
	if cfg.TLS || cfg.MTLS {
		st, err := newTLSState(s.dir, cfg.MTLS)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("emulator: TLS certificates: %w", err)
		}
		s.tls = st
	}
	s.project = &Project{Name: cfg.Project, ID: s.newID(), Metadata: compute.Metadata{Kind: "compute#metadata"}}
	s.project.Metadata.Fingerprint = fingerprint(&s.project.Metadata)
	s.initVPC()
	s.compute = s.computeRoutes()
	s.control = s.controlRoutes()
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/compute/v1/", s.googleJSON(s.serveCompute))
	s.mux.HandleFunc("/v4/connect", s.serveIAP)
	s.mux.HandleFunc("/v4/reconnect", s.serveIAP)
	s.mux.HandleFunc("/control/", s.serveControl)
	s.mux.HandleFunc("/v1/users/", s.googleJSON(s.serveOSLogin))
	s.mux.HandleFunc("POST /v3/projects/", s.googleJSON(s.serveTestIAM))
	s.mux.HandleFunc("POST /v1/projects/{project}/serviceAccounts/", s.googleJSON(s.serveTestIAM))
	s.mux.HandleFunc("POST /v1/projects/{project}/iap_tunnel/", s.googleJSON(s.serveTestIAM))
	s.mux.HandleFunc("/v1/projects/{project}/locations/global/", s.googleJSON(s.serveNetworkManagement))
	s.mux.HandleFunc("GET /v1/projects/{project}/services/{service}", s.googleJSON(s.serveServiceUsage))
	s.mux.HandleFunc("POST /v1/projects/{project}/services/{service}", s.googleJSON(s.serveServiceUsage))
	s.mux.HandleFunc("GET /v3/projects/{project}/timeSeries", s.googleJSON(s.serveTimeSeries))
	s.mux.HandleFunc("POST /token", s.serveToken)
	s.mux.HandleFunc("POST /v1/projects/{project}/serviceAccounts/{sa}", s.googleJSON(s.serveGenerateAccessToken))
	for i := 0; i < cfg.Nodes; i++ {
		name, zone := gkeNodeName(i)
		if _, err := s.AddNode(name, zone); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.tls != nil && s.checkDevice(s.jsonWriter(w, r), r) {
		return
	}
	s.journal.record(r)
	s.mux.ServeHTTP(w, r)
}

// Token returns the bearer token that may use the project.
func (s *Server) Token() string { return s.cfg.Token }

// ControlSecret returns the secret the control API requires as
// "Authorization: Bearer SECRET".
func (s *Server) ControlSecret() string { return s.cfg.ControlSecret }

// ProjectName returns the emulated project's name.
func (s *Server) ProjectName() string { return s.cfg.Project }

// Dir returns the emulator's state directory.
func (s *Server) Dir() string { return s.dir }

// Close stops every node and removes a temporary state directory.
func (s *Server) Close() error {
	s.relay.close()
	s.mu.Lock()
	nodes := make([]*Node, 0, len(s.nodes))
	for _, n := range s.nodes {
		nodes = append(nodes, n)
	}
	s.nodes = map[string]*Node{}
	s.mu.Unlock()
	for _, n := range nodes {
		n.close()
	}
	if s.tempDir {
		return os.RemoveAll(s.dir)
	}
	return nil
}

// Nodes returns the node names, sorted (a name in two zones comes twice).
func (s *Server) Nodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.nodes))
	for _, n := range s.nodes {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	return names
}

// nodeList returns the nodes, sorted by name, then zone.
func (s *Server) nodeList() []*Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	nodes := slices.Collect(maps.Values(s.nodes))
	slices.SortFunc(nodes, func(a, b *Node) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Zone, b.Zone))
	})
	return nodes
}

// Node returns the node of that name, or nil if there is none, or if there
// are nodes of that name in several zones (NodeIn tells them apart).
func (s *Server) Node(name string) *Node {
	n, _ := s.findNode(name, "")
	return n
}

// NodeIn returns the node of that name in zone, or nil.
func (s *Server) NodeIn(zone, name string) *Node {
	n, _ := s.findNode(name, zone)
	return n
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// SetPropagationDelay sets how long the guest agents wait before installing keys.
func (s *Server) SetPropagationDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// Stats are counters for tests: every Compute API call, every successful
// metadata write, every tunnel websocket accepted, every token minted; and
// the principal behind each write and tunnel ("" for none).
type Stats struct {
	APICalls         int64            `json:"apiCalls"`
	RateLimited      int64            `json:"rateLimited"` // API calls answered 429 (Faults.APIRate)
	MetadataWrites   int64            `json:"metadataWrites"`
	Tunnels          int64            `json:"tunnels"`
	LiveTunnels      int64            `json:"liveTunnels"` // tunnel sessions open now (also those waiting for a reconnect)
	TokenGrants      int64            `json:"tokenGrants"`
	MetadataWritesBy map[string]int64 `json:"metadataWritesBy"`
	TunnelsBy        map[string]int64 `json:"tunnelsBy"`
	TunnelsThrottled int64            `json:"tunnelsThrottled"`      // tunnel websockets refused with 429 (Faults.TunnelRate)
	ClientCerts      map[string]int64 `json:"clientCerts,omitempty"` // requests with a client certificate from the device CA, by its CN (Config.MTLS)
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	st := Stats{APICalls: s.apiCalls.Load(), RateLimited: s.rateLimited.Load(), MetadataWrites: s.metadataWrites.Load(), Tunnels: s.tunnels.Load(), LiveTunnels: int64(s.relay.live())}
	st.TokenGrants, st.MetadataWritesBy, st.TunnelsBy = s.principalStats()
	st.ClientCerts = s.clientCertStats()
	st.TunnelsThrottled = s.relay.throttled.Load()
	return st
}

// metadataChanged wakes the guest agents; call with s.mu held.
func (s *Server) metadataChanged() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// newID returns a fresh numeric resource id; call with s.mu held or before serving.
func (s *Server) newID() uint64 {
	s.nextID += 7919
	return s.nextID
}

// gkeNodeName names node i like GKE does: gke-CLUSTER-POOL-GROUP-SUFFIX,
// GROUP being the pool's instance group in one zone. The first 20 are the
// default pool's groups in us-west1-a and us-west1-b, as they always were;
// after them come that pool's group in us-west1-c and a second pool's
// groups in all three zones, so a large emulator looks like a regional
// cluster with two node pools.
func gkeNodeName(i int) (name, zone string) {
	type group struct{ pool, hash, zone string }
	first := []group{{"default-pool", "3e89aeb0", "us-west1-a"}, {"default-pool", "41ef50b9", "us-west1-b"}}
	suffixes := []string{"b47k", "5zfg", "xx3q", "l584", "5lj5", "9kd2", "q7wm", "h2vc", "t8rn", "m3xp"}
	if i < len(first)*len(suffixes) {
		g := first[i%len(first)]
		return fmt.Sprintf("gke-cluster-%s-%s-%s", g.pool, g.hash, suffixes[i/len(first)]), g.zone
	}
	more := []group{
		{"default-pool", "5c0d7e21", "us-west1-c"},
		{"pool-1", "8b3f02aa", "us-west1-a"},
		{"pool-1", "c41d97e6", "us-west1-b"},
		{"pool-1", "f07a5b13", "us-west1-c"},
	}
	j := i - len(first)*len(suffixes)
	g := more[j%len(more)]
	// Four base-36 characters, distinct for every i below 36^4: the
	// multiplier is prime to 36^4.
	n := (uint64(i) * 2654435761) % (36 * 36 * 36 * 36)
	suffix := fmt.Sprintf("%04s", strconv.FormatUint(n, 36))
	return fmt.Sprintf("gke-cluster-%s-%s-%s", g.pool, g.hash, suffix), g.zone
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
