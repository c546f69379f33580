//go:build unix

package emulator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// A kubelet stub per node, as GKE documents the kubelet (Disable the
// kubelet read-only port in GKE clusters): the read-only port 10255 answers plain HTTP without authentication, the
// secure port 10250 answers HTTPS and wants a bearer token, and
// kubelet_http_requests_total counts each request by path and server type.
// The stub listens on loopback; the node's sshd maps the node's own
// 127.0.0.1:10255 and :10250 (and NETWORK_IP:10255) to it.

// Kubelet ports as the node sees them.
const (
	kubeletReadOnlyPort = 10255
	kubeletSecurePort   = 10250
)

// kubelet is one node's stub.
type kubelet struct {
	mu       sync.Mutex
	readOnly *http.Server // nil while the read-only port is off
	roAddr   string
	secure   *http.Server
	secAddr  string
	counts   map[kubeletReq]int64
	wg       sync.WaitGroup
}

// kubeletReq is one kubelet_http_requests_total series.
type kubeletReq struct{ method, path, serverType string }

// kubeletCert is the secure port's self-signed certificate, made once.
var kubeletCert = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kubelet"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
})

// startKubelet starts a node's stub with the read-only port as readOnly says.
func startKubelet(readOnly bool) (*kubelet, error) {
	k := &kubelet{counts: map[kubeletReq]int64{}}
	cert, err := kubeletCert()
	if err != nil {
		return nil, fmt.Errorf("emulator kubelet: certificate: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("emulator kubelet: %w", err)
	}
	k.secure = &http.Server{Handler: k.handler("readwrite"), ReadHeaderTimeout: 10 * time.Second}
	k.secAddr = ln.Addr().String()
	k.serve(k.secure, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}))
	if readOnly {
		if err := k.setReadOnly(true); err != nil {
			k.close()
			return nil, err
		}
	}
	return k, nil
}

func (k *kubelet) serve(srv *http.Server, ln net.Listener) {
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		srv.Serve(ln) // returns when closed
	}()
}

// setReadOnly opens or closes the read-only port. Like a kubelet restarted
// with a new configuration, the counters start again from zero.
func (k *kubelet) setReadOnly(on bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if (k.readOnly != nil) == on {
		return nil
	}
	k.counts = map[kubeletReq]int64{}
	if !on {
		k.readOnly.Close()
		k.readOnly, k.roAddr = nil, ""
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("emulator kubelet: %w", err)
	}
	k.readOnly = &http.Server{Handler: k.handler("readonly"), ReadHeaderTimeout: 10 * time.Second}
	k.roAddr = ln.Addr().String()
	k.serve(k.readOnly, ln)
	return nil
}

// addrs returns where the two ports listen; readOnly is "" while off.
func (k *kubelet) addrs() (readOnly, secure string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.roAddr, k.secAddr
}

func (k *kubelet) close() {
	k.mu.Lock()
	if k.readOnly != nil {
		k.readOnly.Close()
	}
	k.secure.Close()
	k.mu.Unlock()
	k.wg.Wait()
}

// metricPath is the kubelet's path label: the first path segment, as the
// kubelet buckets its requests.
func metricPath(p string) string {
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	switch first {
	case "healthz", "pods", "metrics", "stats", "spec", "configz", "runningpods":
		return first
	}
	return "other"
}

// handler serves the endpoints the stub knows; each request is counted
// first, as the kubelet counts it before serving.
func (k *kubelet) handler(serverType string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if serverType == "readwrite" {
			if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || tok == "" {
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
				return
			}
		}
		k.mu.Lock()
		k.counts[kubeletReq{r.Method, metricPath(r.URL.Path), serverType}]++
		k.mu.Unlock()
		switch r.URL.Path {
		case "/healthz":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "ok")
		case "/pods":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[`+
				`{"metadata":{"name":"kube-proxy","namespace":"kube-system"},"spec":{"hostNetwork":true},"status":{"phase":"Running"}},`+
				`{"metadata":{"name":"fluentbit-gke","namespace":"kube-system"},"spec":{},"status":{"phase":"Running"}}]}`+"\n")
		case "/metrics":
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			io.WriteString(w, k.metrics())
		default:
			http.NotFound(w, r)
		}
	})
}

// metrics renders the counters in Prometheus text format, labels sorted by
// name and series sorted, as the kubelet's registry prints them.
func (k *kubelet) metrics() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var lines []string
	for q, n := range k.counts {
		lines = append(lines, fmt.Sprintf(`kubelet_http_requests_total{long_running="false",method=%q,path=%q,server_type=%q} %d`, q.method, q.path, q.serverType, n))
	}
	slices.Sort(lines)
	return "# HELP kubelet_http_requests_total [ALPHA] Number of the http requests received since the server started\n" +
		"# TYPE kubelet_http_requests_total counter\n" + strings.Join(lines, "\n") + "\n"
}

// localAddr maps an address a node's sshd is asked to connect to
// (direct-tcpip) to where the emulator serves it: the node's loopback or
// own IP at the kubelet ports go to the stub, its own IP at 22 to its sshd.
// mapped is false for any other address; addr is "" when nothing listens.
func (n *Node) localAddr(host string, port int) (addr string, mapped bool) {
	n.mu.Lock()
	ip, k := n.ip, n.kubelet
	n.mu.Unlock()
	self := host == ip
	if !self && host != "127.0.0.1" && host != "localhost" {
		return "", false
	}
	switch {
	case port == kubeletReadOnlyPort && k != nil:
		ro, _ := k.addrs()
		return ro, true
	case port == kubeletSecurePort && k != nil:
		_, sec := k.addrs()
		return sec, true
	case port == 22 && self:
		return n.SSHAddr(), true
	}
	return "", false
}

// kubeletConfig is the node's kubelet-config instance attribute as GKE
// writes it, with readOnlyPort present only while the port is on (the
// KubeletConfiguration default, 0, turns it off).
func kubeletConfig(readOnly bool) string {
	ro := ""
	if readOnly {
		ro = "readOnlyPort: 10255\n"
	}
	return "apiVersion: kubelet.config.k8s.io/v1beta1\n" +
		"authentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: true\n" +
		"  x509:\n    clientCAFile: /etc/srv/kubernetes/pki/ca-certificates.crt\n" +
		"authorization:\n  mode: Webhook\ncgroupRoot: /\nclusterDomain: cluster.local\n" +
		"enableDebuggingHandlers: true\nkind: KubeletConfiguration\n" + ro +
		"serverTLSBootstrap: true\nstaticPodPath: /etc/kubernetes/manifests\n"
}

// startNodeKubelet gives a new node its stub, read-only port on, and the
// matching kubelet-config attribute.
func (s *Server) startNodeKubelet(n *Node) error {
	k, err := startKubelet(true)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.kubelet = k
	n.mu.Unlock()
	return s.setNodeMetadata(n, map[string]*string{"kubelet-config": ptr(kubeletConfig(true))})
}

// SetKubeletReadOnlyPort turns a node's read-only port on or off and
// rewrites its kubelet-config attribute to match, as a node-pool update
// does.
func (s *Server) SetKubeletReadOnlyPort(node string, on bool) error {
	n, err := s.findNode(node, "")
	if err != nil {
		return err
	}
	return s.setKubeletReadOnlyPort(n, on)
}

func (s *Server) setKubeletReadOnlyPort(n *Node, on bool) error {
	node := n.Name
	n.mu.Lock()
	k := n.kubelet
	n.mu.Unlock()
	if k == nil {
		return fmt.Errorf("emulator: node %s has no kubelet", node)
	}
	if err := k.setReadOnly(on); err != nil {
		return err
	}
	return s.setNodeMetadata(n, map[string]*string{"kubelet-config": ptr(kubeletConfig(on))})
}

// PollKubelet makes count real GET requests to path on the node's
// read-only port, as a workload still using it would.
func (s *Server) PollKubelet(ctx context.Context, node, path string, count int) error {
	n, err := s.findNode(node, "")
	if err != nil {
		return err
	}
	return pollKubelet(ctx, n, path, count)
}

func pollKubelet(ctx context.Context, n *Node, path string, count int) error {
	node := n.Name
	addr, _ := n.localAddr("127.0.0.1", kubeletReadOnlyPort)
	if addr == "" {
		return errors.New("emulator: the read-only port of " + node + " is off")
	}
	for range count {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return nil
}

// kubeletPatch is the control API's change to kubelets: the read-only port
// on or off, and requests a workload makes to it.
type kubeletPatch struct {
	ReadOnlyPort *bool `json:"readOnlyPort"`
	Poll         *struct {
		Path  string `json:"path"`
		Count int    `json:"count"`
	} `json:"poll"`
}

// ctlKubelet changes one node's kubelet, or (with {pool}) every node's in
// a node pool, optionally of one cluster (?cluster=).
func (s *Server) ctlKubelet(r *http.Request) (any, *apiError) {
	var p kubeletPatch
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if p.Poll != nil && (p.Poll.Count < 0 || p.Poll.Count > 10000 || !strings.HasPrefix(p.Poll.Path, "/")) {
		return nil, invalid("poll wants a path starting with / and a count of 0-10000")
	}
	var nodes []*Node
	if r.PathValue("name") != "" {
		n, err := s.ctlFindNode(r)
		if err != nil {
			return nil, err
		}
		nodes = []*Node{n}
	} else {
		pool, cluster := r.PathValue("pool"), r.URL.Query().Get("cluster")
		for _, n := range s.nodeList() {
			n.mu.Lock()
			in := n.labels["goog-k8s-node-pool-name"] == pool && (cluster == "" || n.labels["goog-k8s-cluster-name"] == cluster)
			n.mu.Unlock()
			if in {
				nodes = append(nodes, n)
			}
		}
		if len(nodes) == 0 {
			return nil, notFound("pools/" + pool)
		}
	}
	var names []string
	for _, n := range nodes {
		if p.ReadOnlyPort != nil {
			if err := s.setKubeletReadOnlyPort(n, *p.ReadOnlyPort); err != nil {
				return nil, invalid("%v", err)
			}
		}
		if p.Poll != nil {
			if err := pollKubelet(r.Context(), n, p.Poll.Path, p.Poll.Count); err != nil {
				return nil, &apiError{http.StatusConflict, "failedPrecondition", err.Error()}
			}
		}
		names = append(names, n.Name)
	}
	return map[string][]string{"nodes": names}, nil
}
