//go:build unix

package emulator

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	compute "google.golang.org/api/compute/v1"

	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/keys"
)

// loginViaMetadata puts a fresh key in project metadata, waits for the
// node's guest agent to install it, and logs in to the node's sshd.
func loginViaMetadata(t *testing.T, srv *Server, n *Node) *ssh.Client {
	t.Helper()
	user, signer := loginUser(t), testkey.Signer(t)
	line := keys.FormatLine(user, signer.PublicKey(), "")
	if err := srv.SetProjectMetadata(map[string]*string{"ssh-keys": &line}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(n.InstalledKeys()[user]) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the guest agent of %s installed no key", n.Name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	n.mu.Lock()
	d := n.sshd
	n.mu.Unlock()
	c, err := dialNode(d, user, signer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// getVia makes one HTTP GET through the node's sshd (direct-tcpip).
func getVia(c *ssh.Client, addr, path string, header http.Header) (int, string, error) {
	conn, err := c.Dial("tcp", addr)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Header = header
	if err := req.Write(conn); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestKubeletReadOnlyPortThroughSSHD(t *testing.T) {
	srv, _ := newTestServer(t, Config{Nodes: 2})
	n := srv.Node(srv.Nodes()[0])
	c := loginViaMetadata(t, srv, n)
	ip := n.Info().NetworkIP
	for _, tc := range []struct{ addr, path, want string }{
		{"127.0.0.1:10255", "/healthz", "ok"},
		{"localhost:10255", "/pods", `"kind":"PodList"`},
		{ip + ":10255", "/healthz", "ok"},
	} {
		code, body, err := getVia(c, tc.addr, tc.path, nil)
		if err != nil || code != 200 || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s%s = %d %q, %v; want 200 with %q", tc.addr, tc.path, code, body, err, tc.want)
		}
	}
	_, metrics, err := getVia(c, "127.0.0.1:10255", "/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE kubelet_http_requests_total counter\n",
		`kubelet_http_requests_total{long_running="false",method="GET",path="healthz",server_type="readonly"} 2` + "\n",
		`kubelet_http_requests_total{long_running="false",method="GET",path="pods",server_type="readonly"} 1` + "\n",
		// The scrape counts itself, as the kubelet's does.
		`kubelet_http_requests_total{long_running="false",method="GET",path="metrics",server_type="readonly"} 1` + "\n",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
	// A workload polling it shows in the counts.
	if err := srv.PollKubelet(context.Background(), n.Name, "/pods", 5); err != nil {
		t.Fatal(err)
	}
	if _, metrics, _ = getVia(c, "127.0.0.1:10255", "/metrics", nil); !strings.Contains(metrics, `path="pods",server_type="readonly"} 6`) {
		t.Errorf("after 5 polls, metrics = %s", metrics)
	}
	// The other node's stub is its own.
	if err := srv.PollKubelet(context.Background(), srv.Nodes()[1], "/pods", 1); err != nil {
		t.Fatal(err)
	}
	if _, metrics, _ = getVia(c, "127.0.0.1:10255", "/metrics", nil); !strings.Contains(metrics, `path="pods",server_type="readonly"} 6`) {
		t.Errorf("another node's poll counted here: %s", metrics)
	}

	// Off: refused, and kubelet-config no longer names the port.
	if err := srv.SetKubeletReadOnlyPort(n.Name, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := getVia(c, "127.0.0.1:10255", "/healthz", nil); err == nil || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("read-only port off: GET = %v, want connection refused", err)
	}
	if cfg := srv.instance(n).res.Metadata; !strings.Contains(itemValue(cfg, "kubelet-config"), "kind: KubeletConfiguration") ||
		strings.Contains(itemValue(cfg, "kubelet-config"), "readOnlyPort") {
		t.Errorf("kubelet-config with the port off = %q", itemValue(cfg, "kubelet-config"))
	}
	if err := srv.SetKubeletReadOnlyPort(n.Name, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(itemValue(srv.instance(n).res.Metadata, "kubelet-config"), "\nreadOnlyPort: 10255\n") {
		t.Errorf("kubelet-config with the port on lacks readOnlyPort: 10255")
	}
	if code, _, err := getVia(c, "127.0.0.1:10255", "/healthz", nil); err != nil || code != 200 {
		t.Errorf("read-only port back on: %d %v", code, err)
	}
}

func TestKubeletSecurePortWantsToken(t *testing.T) {
	srv, _ := newTestServer(t, Config{Nodes: 1})
	n := srv.Node(srv.Nodes()[0])
	_, sec := n.kubelet.addrs()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, tc := range []struct {
		token string
		want  int
	}{{"", 401}, {"some-token", 200}} {
		req, _ := http.NewRequest(http.MethodGet, "https://"+sec+"/healthz", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("token %q: %d, want %d", tc.token, resp.StatusCode, tc.want)
		}
	}
	if m := n.kubelet.metrics(); !strings.Contains(m, `path="healthz",server_type="readwrite"} 1`) {
		t.Errorf("secure port requests not counted as readwrite: %s", m)
	}
}

func TestControlKubeletPool(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 4})
	pool := "default-pool"
	var resp struct{ Nodes []string }
	if code := ctl(t, hs, "POST", "/control/pools/"+pool+"/kubelet", map[string]any{"readOnlyPort": false}, &resp); code != 200 || len(resp.Nodes) != 4 {
		t.Errorf("pool update answered %d %v, want 200 and 4 nodes", code, resp.Nodes)
	}
	if code := ctl(t, hs, "POST", "/control/pools/no-such-pool/kubelet", map[string]any{"readOnlyPort": false}, nil); code != 404 {
		t.Errorf("unknown pool: %d, want 404", code)
	}
	for _, name := range srv.Nodes() {
		if ro, _ := srv.Node(name).kubelet.addrs(); ro != "" {
			t.Errorf("%s: read-only port still open after the pool update", name)
		}
	}
	ctl(t, hs, "POST", "/control/nodes/"+srv.Nodes()[0]+"/kubelet", map[string]any{"readOnlyPort": true, "poll": map[string]any{"path": "/pods", "count": 3}}, nil)
	if m := srv.Node(srv.Nodes()[0]).kubelet.metrics(); !strings.Contains(m, `path="pods",server_type="readonly"} 3`) {
		t.Errorf("control poll: %s", m)
	}
}

// itemValue is a metadata item's value, "" when absent.
func itemValue(md *compute.Metadata, key string) string {
	v, _ := metadataValue(md, key)
	return v
}
