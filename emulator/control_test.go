//go:build unix

package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/keys"
	"golang.org/x/crypto/ssh"
	compute "google.golang.org/api/compute/v1"
)

// ctl calls the control API with a JSON body (nil: none), decodes the reply
// into out (nil: ignore) and returns the HTTP status.
// testControlSecret is the control secret of newTestServer's emulators.
const testControlSecret = "test-control-secret"

func ctl(t *testing.T, hs *httptest.Server, method, path string, body, out any) int {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, hs.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testControlSecret)
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode reply: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

func TestControlNodes(t *testing.T) {
	_, hs := newTestServer(t, Config{Nodes: 2})
	var nodes []NodeInfo
	if code := ctl(t, hs, "GET", "/control/nodes", nil, &nodes); code != 200 || len(nodes) != 2 {
		t.Fatalf("list nodes: %d %+v, want 2 nodes", code, nodes)
	}
	steps := []struct {
		method, path string
		body         any
		code         int
		wantName     string
	}{
		{"POST", "/control/nodes", map[string]string{"name": "n1", "zone": "us-west1-c"}, 200, "n1"},
		{"POST", "/control/nodes", nil, 200, "gke-cluster-default-pool-3e89aeb0-5zfg"},
		{"POST", "/control/nodes", map[string]string{"name": "n1", "zone": "us-west1-c"}, 400, ""},
		{"GET", "/control/nodes/n1", nil, 200, "n1"},
		{"DELETE", "/control/nodes/n1", nil, 204, ""},
		{"DELETE", "/control/nodes/n1", nil, 404, ""},
		{"GET", "/control/nodes/n1", nil, 404, ""},
		{"PUT", "/control/nodes", nil, 404, ""},
	}
	for _, st := range steps {
		var info NodeInfo
		code := ctl(t, hs, st.method, st.path, st.body, &info)
		if code != st.code || info.Name != st.wantName {
			t.Errorf("%s %s: %d %+v, want %d with name %q", st.method, st.path, code, info, st.code, st.wantName)
		}
	}
	if code := ctl(t, hs, "GET", "/control/nodes", nil, &nodes); code != 200 || len(nodes) != 3 {
		t.Errorf("list nodes: %d %+v, want 3 nodes", code, nodes)
	}
}

func TestControlPatchNode(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 1})
	n := srv.Node(srv.Nodes()[0])
	useFakeSSHD(t, n)
	svc := computeClient(t, hs, srv.Token())
	path := "/control/nodes/" + n.Name
	before, err := svc.Instances.Get(srv.ProjectName(), n.Zone, n.Name).Do()
	if err != nil {
		t.Fatal(err)
	}

	var info NodeInfo
	patch := map[string]any{"status": "TERMINATED", "firewall": false, "sshd": "stopped",
		"metadata": map[string]any{"block-project-ssh-keys": "true", "enable-oslogin": "FALSE"}}
	if code := ctl(t, hs, "POST", path, patch, &info); code != 200 {
		t.Fatalf("patch: %d", code)
	}
	if info.Status != "TERMINATED" || info.Firewall || info.SSHAddr != "" {
		t.Errorf("after patch node = %+v, want TERMINATED, firewall closed, sshd stopped", info)
	}
	in, err := svc.Instances.Get(srv.ProjectName(), n.Zone, n.Name).Do()
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := metadataValue(in.Metadata, "block-project-ssh-keys"); in.Status != "TERMINATED" || v != "true" ||
		in.Metadata.Fingerprint == before.Metadata.Fingerprint {
		t.Errorf("instance after patch: status %s, metadata %s", in.Status, mustJSON(t, in.Metadata))
	}

	patch = map[string]any{"status": "RUNNING", "firewall": true, "sshd": "running",
		"metadata": map[string]any{"block-project-ssh-keys": nil}}
	if code := ctl(t, hs, "POST", path, patch, &info); code != 200 {
		t.Fatalf("patch back: %d", code)
	}
	if info.Status != "RUNNING" || !info.Firewall || info.SSHAddr == "" {
		t.Errorf("after patch back node = %+v", info)
	}
	if in, err = svc.Instances.Get(srv.ProjectName(), n.Zone, n.Name).Do(); err != nil {
		t.Fatal(err)
	}
	if _, set := metadataValue(in.Metadata, "block-project-ssh-keys"); set {
		t.Errorf("null did not delete block-project-ssh-keys: %s", mustJSON(t, in.Metadata))
	}

	if code := ctl(t, hs, "POST", path, map[string]any{"ports": map[string]string{"8080": "127.0.0.1:9000"}}, &info); code != 200 ||
		info.Ports["8080"] != "127.0.0.1:9000" || n.backendAddr(8080) != "127.0.0.1:9000" {
		t.Errorf("forward port 8080: %d %+v, relay goes to %q", code, info, n.backendAddr(8080))
	}
	if code := ctl(t, hs, "POST", path, map[string]any{"networkIP": "127.0.0.1"}, &info); code != 200 || info.NetworkIP != "127.0.0.1" {
		t.Errorf("set networkIP: %d %+v", code, info)
	}
	if in, err := svc.Instances.Get(srv.ProjectName(), n.Zone, n.Name).Do(); err != nil || in.NetworkInterfaces[0].NetworkIP != "127.0.0.1" {
		t.Errorf("instance networkIP after patch: %v %v", err, in)
	}
	var stopped NodeInfo
	if code := ctl(t, hs, "POST", path, map[string]any{"ports": map[string]string{"8080": ""}}, &stopped); code != 200 ||
		len(stopped.Ports) != 0 || n.backendAddr(8080) != "" {
		t.Errorf("stop forwarding 8080: %d %+v", code, stopped)
	}

	for _, bad := range []map[string]any{
		{"status": "STOPPING"},
		{"sshd": "paused"},
		{"metadata": map[string]any{"bad key": "x"}},
		{"ports": map[string]string{"22": "127.0.0.1:9000"}},
		{"ports": map[string]string{"http": "127.0.0.1:9000"}},
		{"ports": map[string]string{"8080": "nowhere"}},
		{"networkIP": "::1"},
		{"networkIP": "10.0.0"},
	} {
		if code := ctl(t, hs, "POST", path, bad, nil); code != 400 {
			t.Errorf("patch %v: %d, want 400", bad, code)
		}
	}
}

func TestControlProjectAndKeys(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 1})
	n := srv.Node(srv.Nodes()[0])
	f := useFakeSSHD(t, n)
	key := testkey.Public(t)
	line := keys.FormatLine("alice", key, "alice@laptop")
	var proj projectInfo
	if code := ctl(t, hs, "POST", "/control/project", map[string]any{"metadata": map[string]string{"ssh-keys": line}}, &proj); code != 200 {
		t.Fatalf("patch project: %d", code)
	}
	if v, _ := metadataValue(proj.Metadata, "ssh-keys"); v != line {
		t.Errorf("project metadata = %s", mustJSON(t, proj.Metadata))
	}
	f.nextInstall(t, time.Second)
	var got map[string][]string
	if code := ctl(t, hs, "GET", "/control/nodes/"+n.Name+"/keys", nil, &got); code != 200 {
		t.Fatalf("keys: %d", code)
	}
	want := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(key)), "\n")
	if len(got["alice"]) != 1 || got["alice"][0] != want {
		t.Errorf("installed keys = %v, want alice: %s", got, want)
	}
}

func TestControlFaultsDelayStatsTokens(t *testing.T) {
	srv, hs := newTestServer(t, Config{})
	svc := computeClient(t, hs, srv.Token())
	p := srv.ProjectName()

	var f Faults
	if code := ctl(t, hs, "POST", "/control/faults", Faults{MetadataConflicts: 1, DropAfterBytes: 100}, &f); code != 200 || f.MetadataConflicts != 1 {
		t.Fatalf("set faults: %d %+v", code, f)
	}
	pr, err := svc.Projects.Get(p).Do()
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Projects.SetCommonInstanceMetadata(p, pr.CommonInstanceMetadata).Do()
	wantAPIError(t, err, 412, "conditionNotMet")
	if code := ctl(t, hs, "GET", "/control/faults", nil, &f); code != 200 || f.MetadataConflicts != 0 || f.DropAfterBytes != 100 {
		t.Errorf("faults after one conflict: %d %+v", code, f)
	}
	if code := ctl(t, hs, "POST", "/control/faults", map[string]int{"metadataConflicts": -1}, nil); code != 400 {
		t.Errorf("negative fault: %d, want 400", code)
	}

	var d propagation
	if code := ctl(t, hs, "POST", "/control/propagation", propagation{"250ms"}, &d); code != 200 || d.Delay != "250ms" || srv.PropagationDelay() != 250*time.Millisecond {
		t.Errorf("set delay: %d %+v", code, d)
	}
	if code := ctl(t, hs, "POST", "/control/propagation", propagation{"soon"}, nil); code != 400 {
		t.Errorf("bad delay: %d, want 400", code)
	}

	var st Stats
	if code := ctl(t, hs, "GET", "/control/stats", nil, &st); code != 200 || st.APICalls != 2 {
		t.Errorf("stats: %d %+v, want 2 API calls", code, st)
	}
	if code := ctl(t, hs, "POST", "/control/stats/reset", nil, &st); code != 200 || !reflect.DeepEqual(st, Stats{MetadataWritesBy: map[string]int64{}, TunnelsBy: map[string]int64{}}) {
		t.Errorf("reset stats: %d %+v", code, st)
	}

	var tok struct{ Token string }
	if code := ctl(t, hs, "POST", "/control/tokens", map[string]any{}, &tok); code != 200 || tok.Token == "" {
		t.Fatalf("add token: %d %+v", code, tok)
	}
	_, err = computeClient(t, hs, tok.Token).Projects.Get(p).Do()
	wantAPIError(t, err, 403, "forbidden")
	if code := ctl(t, hs, "POST", "/control/tokens", map[string]any{"token": "t2", "projects": []string{p}}, nil); code != 200 {
		t.Fatalf("add token t2: %d", code)
	}
	if _, err := computeClient(t, hs, "t2").Projects.Get(p).Do(); err != nil {
		t.Errorf("token t2 with permission: %v", err)
	}
}

// TestControlAccess: the control API serves loopback clients that send the
// control secret, and nobody else: not even with the access token.
func TestControlAccess(t *testing.T) {
	srv, err := New(Config{ControlSecret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close emulator: %v", err)
		}
	})
	tests := []struct {
		addr, auth string
		want       int
	}{
		{"127.0.0.1:4000", "Bearer s3cret", 200},
		{"[::1]:4000", "Bearer s3cret", 200},
		{"192.0.2.1:4000", "Bearer s3cret", 403},
		{"127.0.0.1:4000", "", 401},
		{"127.0.0.1:4000", "Bearer ", 401},
		{"127.0.0.1:4000", "Bearer s3cre", 401},
		{"127.0.0.1:4000", "s3cret", 401},
		{"127.0.0.1:4000", "Bearer " + srv.Token(), 401},
	}
	for _, tt := range tests {
		req := httptest.NewRequest("POST", "/control/project", strings.NewReader(`{"metadata":{"ssh-keys":"root:ssh-ed25519 AAAA"}}`))
		req.RemoteAddr = tt.addr
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("control from %s with %q: %d, want %d", tt.addr, tt.auth, rec.Code, tt.want)
		}
	}
}

// TestNamesUniquePerZone: instance names are unique per zone, as in GCE,
// not per project, so a name in two zones can be
// made through the control API and tell gkessh's and gcloud's zone
// choices apart. Each zone's instance is its own; the control API names
// the zones when a request for that name gives none.
func TestNamesUniquePerZone(t *testing.T) {
	srv, hs := newTestServer(t, Config{})
	var a, b NodeInfo
	if code := ctl(t, hs, "POST", "/control/nodes", map[string]string{"name": "dup", "zone": "us-west1-a"}, &a); code != 200 {
		t.Fatalf("add dup in us-west1-a: %d", code)
	}
	if code := ctl(t, hs, "POST", "/control/nodes", map[string]string{"name": "dup", "zone": "us-west1-b"}, &b); code != 200 {
		t.Fatalf("add dup in us-west1-b: %d", code)
	}
	if code := ctl(t, hs, "POST", "/control/nodes", map[string]string{"name": "dup", "zone": "us-west1-b"}, nil); code != 400 {
		t.Errorf("a second dup in us-west1-b: %d, want 400", code)
	}
	if a.ID == b.ID {
		t.Fatalf("both dups have id %d", a.ID)
	}
	svc := computeClient(t, hs, srv.Token())
	for _, want := range []NodeInfo{a, b} {
		inst, err := svc.Instances.Get(srv.ProjectName(), want.Zone, "dup").Do()
		if err != nil || inst.Id != want.ID {
			t.Errorf("instances.get dup in %s: %v, %v; want id %d", want.Zone, inst, err, want.ID)
		}
	}
	list, err := svc.Instances.AggregatedList(srv.ProjectName()).Filter("name eq ^dup$").Do()
	if err != nil {
		t.Fatal(err)
	}
	var zones []string
	for scope, l := range list.Items {
		for range l.Instances {
			zones = append(zones, scope)
		}
	}
	slices.Sort(zones)
	if !slices.Equal(zones, []string{"zones/us-west1-a", "zones/us-west1-b"}) {
		t.Errorf("aggregatedList name eq ^dup$: %v", zones)
	}

	if code := ctl(t, hs, "GET", "/control/nodes/dup", nil, nil); code != 409 {
		t.Errorf("GET /control/nodes/dup without a zone: %d, want 409", code)
	}
	var got NodeInfo
	if code := ctl(t, hs, "GET", "/control/nodes/dup?zone=us-west1-b", nil, &got); code != 200 || got.ID != b.ID {
		t.Errorf("GET /control/nodes/dup?zone=us-west1-b: %d %+v, want id %d", code, got, b.ID)
	}
	if code := ctl(t, hs, "POST", "/control/nodes/dup?zone=us-west1-a", map[string]any{"metadata": map[string]string{"only": "a"}}, nil); code != 200 {
		t.Errorf("patch dup in us-west1-a: %d", code)
	}
	for _, n := range []NodeInfo{a, b} {
		inst, _ := svc.Instances.Get(srv.ProjectName(), n.Zone, "dup").Do()
		_, has := instanceItem(inst, "only")
		if has != (n.Zone == "us-west1-a") {
			t.Errorf("dup in %s has the other's metadata: %v", n.Zone, has)
		}
	}
	if srv.Node("dup") != nil || srv.NodeIn("us-west1-b", "dup") == nil {
		t.Errorf("Node(dup) = %v, NodeIn(us-west1-b, dup) = %v; want nil, the node", srv.Node("dup"), srv.NodeIn("us-west1-b", "dup"))
	}
	if code := ctl(t, hs, "DELETE", "/control/nodes/dup?zone=us-west1-a", nil, nil); code != 204 {
		t.Errorf("DELETE dup in us-west1-a: %d", code)
	}
	if n := srv.Node("dup"); n == nil || n.Zone != "us-west1-b" {
		t.Errorf("after deleting us-west1-a's, Node(dup) = %v, want us-west1-b's", n)
	}
}

// instanceItem returns the value of an instance metadata item.
func instanceItem(inst *compute.Instance, key string) (string, bool) {
	if inst == nil || inst.Metadata == nil {
		return "", false
	}
	return metadataValue(inst.Metadata, key)
}

// TestControlNodesListsDocumentedFields: every node GET /control/nodes
// lists has each field the control API's table in docs/emulator.md names,
// ports too when a node forwards none ("ports" was missing).
func TestControlNodesListsDocumentedFields(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "emulator.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `GET /control/nodes` \\| → `\\[\\{(.*)\\}\\]` \\|$").FindSubmatch(doc)
	if row == nil {
		t.Fatal("docs/emulator.md has no GET /control/nodes row")
	}
	var fields []string
	for _, f := range strings.Split(string(row[1]), ",") {
		fields = append(fields, strings.Trim(f, `"`))
	}
	_, hs := newTestServer(t, Config{Nodes: 2})
	var nodes []map[string]any
	if code := ctl(t, hs, "GET", "/control/nodes", nil, &nodes); code != 200 || len(nodes) != 2 {
		t.Fatalf("list nodes: %d %v", code, nodes)
	}
	for _, n := range nodes {
		for _, f := range fields {
			if _, ok := n[f]; !ok {
				t.Errorf("node %v lacks %q", n["name"], f)
			}
		}
		if len(n) != len(fields) {
			t.Errorf("node %v has %d fields, the docs name %d: %v", n["name"], len(n), len(fields), fields)
		}
	}
}

// TestControlRequests: the journal keeps each API request as sent, the
// body too, and the handler still reads the whole body; the control
// API's and the token endpoint's requests are not kept; reset empties it.
func TestControlRequests(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 1})
	svc := computeClient(t, hs, srv.Token())
	proj, err := svc.Projects.Get(srv.ProjectName()).Do()
	if err != nil {
		t.Fatal(err)
	}
	body := `{"fingerprint":"` + proj.CommonInstanceMetadata.Fingerprint + `","items":[{"key":"ssh-keys","value":"alice:ssh-ed25519 AAAA x"}]}`
	path := "/compute/v1/projects/" + srv.ProjectName() + "/setCommonInstanceMetadata"
	req, _ := http.NewRequest("POST", hs.URL+path+"?prettyPrint=false", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("setCommonInstanceMetadata: %s", resp.Status)
	}
	http.PostForm(hs.URL+"/token", map[string][]string{"assertion": {"secret"}})
	var got []Request
	if code := ctl(t, hs, "GET", "/control/requests", nil, &got); code != 200 {
		t.Fatalf("GET /control/requests: %d", code)
	}
	want := Request{Method: "POST", Path: path, Query: "prettyPrint=false", Body: body}
	if len(got) != 2 || got[1] != want || got[0].Method != "GET" {
		t.Errorf("requests %+v, want the project's GET then %+v", got, want)
	}
	proj, err = svc.Projects.Get(srv.ProjectName()).Do()
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := metadataValue(proj.CommonInstanceMetadata, "ssh-keys"); v != "alice:ssh-ed25519 AAAA x" {
		t.Errorf("the write read another body: ssh-keys %q", v)
	}
	if code := ctl(t, hs, "POST", "/control/requests/reset", nil, nil); code != 204 {
		t.Errorf("reset: %d", code)
	}
	if rs := srv.Requests(); len(rs) != 0 {
		t.Errorf("after reset: %+v", rs)
	}
}
