//go:build unix

package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/knownhosts"
)

// hostileNodes are instances a hostile or intercepted Compute API could
// list. None may reach ssh's config, known_hosts or a shell; the nodes next
// to them must still be configured.
var hostileNodes = []struct{ name, zone string }{
	{"evil\nHost *\n    ProxyCommand touch /tmp/gkessh-pwned", "us-west1-a"},
	{"evil\n@cert-authority * ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", "us-west1-a"},
	{"sp ace", "us-west1-a"},
	{`quo"te`, "us-west1-a"},
	{"quo'te", "us-west1-a"},
	{"n$(touch x)", "us-west1-a"},
	{"n;touch x", "us-west1-a"},
	{"..", "us-west1-a"},
	{"gke-\u0441luster-default-pool-3e89aeb0-b47k", "us-west1-a"}, // Cyrillic es
	{"zone-newline", "us-west1-a\nHost *\n    ProxyCommand touch /tmp/gkessh-pwned"},
	{"zone-dots", ".."},
}

// control calls the emulator's control API over HTTP, as a test or script
// outside the process would.
func (e *testEnv) control(method, path string, body, out any) {
	e.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.srv.ControlSecret())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var reply bytes.Buffer
	reply.ReadFrom(resp.Body)
	if resp.StatusCode/100 != 2 {
		e.t.Fatalf("%s %s: %s: %s", method, path, resp.Status, reply.Bytes())
	}
	if out != nil {
		if err := json.Unmarshal(reply.Bytes(), out); err != nil {
			e.t.Fatal(err)
		}
	}
}

// addHostileNodes adds hostileNodes, and a well-named node with hostile
// labels, through the control API.
func (e *testEnv) addHostileNodes() {
	for _, n := range hostileNodes {
		e.control("POST", "/control/nodes", map[string]any{"name": n.name, "zone": n.zone}, nil)
	}
	e.control("POST", "/control/nodes", map[string]any{"name": "labelled", "zone": "us-west1-a", "labels": map[string]string{
		"ok":       "fine",
		"sp ace":   "v",
		"k":        "$(touch x)",
		"k2":       "a\nb",
		"\u0441cc": "look-alike-but-lowercase", // allowed: international letters
	}}, nil)
}

// sshG runs ssh -G on config for host: the options ssh would use.
func sshG(t *testing.T, config, host string) string {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("ssh not installed")
	}
	out, err := exec.Command("ssh", "-G", "-F", config, host).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh -G %s refuses the config: %v\n%s", host, err, out)
	}
	return string(out)
}

// checkKnownHosts checks that every line of the known_hosts file names one
// host, and that host is compute.ID or an instance name.
func checkKnownHosts(t *testing.T, home string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(home, ".ssh", knownhosts.KnownHostsName))
	if err != nil {
		t.Fatal(err)
	}
	good := regexp.MustCompile(`^(compute\.[0-9]+|[a-z][-a-z0-9]*) (ssh-ed25519|ecdsa-sha2-nistp256) [A-Za-z0-9+/=]+$`)
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !good.MatchString(l) {
			t.Errorf("known_hosts line %q", l)
		}
	}
}

func TestHostileNamesConfigSSH(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 2})
	e.addHostileNodes()
	cfg := filepath.Join(e.home, ".ssh", "config")
	for _, pattern := range []string{"", "gke-*"} {
		args := []string{"config-ssh", "--user", "nat"}
		if pattern != "" {
			args = append(args, "--pattern", pattern)
		}
		_, errOut, code := e.run(args...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, errOut)
		}
		if n := strings.Count(errOut, "skipping an instance: invalid"); n != len(hostileNodes) {
			t.Errorf("%q: %d skip lines, want %d:\n%s", args, n, len(hostileNodes), errOut)
		}
		if strings.ContainsAny(strings.TrimSuffix(errOut, "\n"), "\x1b\r") || strings.Contains(errOut, "\nHost *") {
			t.Errorf("stderr carries a name raw: %q", errOut)
		}
		b, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range hostileNodes {
			if strings.Contains(string(b), n.name) || strings.Contains(string(b), n.zone+"\n") {
				t.Errorf("%q: config holds %q:\n%s", args, n.name, b)
			}
		}
		// ssh reads the whole file; the well-named nodes go through gkessh,
		// and nothing reaches any other host.
		for _, node := range []string{"gke-cluster-default-pool-3e89aeb0-b47k", "gke-cluster-default-pool-41ef50b9-b47k"} {
			if got := sshG(t, cfg, node); !strings.Contains(got, "proxycommand ") || !strings.Contains(got, " proxy --user %r") {
				t.Errorf("%q: ssh -G %s has no gkessh ProxyCommand:\n%s", args, node, got)
			}
		}
		if got := sshG(t, cfg, "github.com"); strings.Contains(got, "proxycommand") || strings.Contains(got, "gkessh") {
			t.Errorf("%q: the config reaches github.com:\n%s", args, got)
		}
		checkKnownHosts(t, e.home)
	}
	if _, errOut, code := e.run("config-ssh", "--pattern", "gke-*\nHost *"); code != exitUsage {
		t.Errorf("hostile --pattern: exit %d: %s", code, errOut)
	}
}

func TestHostileNamesInventory(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 2})
	e.addHostileNodes()
	out, errOut, code := e.run("inventory", "--list", "--user", "nat")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(errOut, "skipping an instance: invalid"); n != len(hostileNodes) {
		t.Errorf("%d skip lines, want %d:\n%s", n, len(hostileNodes), errOut)
	}
	if n := strings.Count(errOut, "instance labelled: skipping a label"); n != 3 {
		t.Errorf("%d label skip lines, want 3:\n%s", n, errOut)
	}
	var inv map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatal(err)
	}
	var meta struct {
		HostVars map[string]map[string]any `json:"hostvars"`
	}
	json.Unmarshal(inv["_meta"], &meta)
	var hosts []string
	for h := range meta.HostVars {
		hosts = append(hosts, h)
	}
	if len(hosts) != 3 {
		t.Errorf("hosts %q, want the 2 GKE nodes and labelled", hosts)
	}
	group := regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	for g := range inv {
		if g != "_meta" && !group.MatchString(g) {
			t.Errorf("group %q", g)
		}
	}
	if _, ok := inv["label_ok_fine"]; !ok {
		t.Errorf("the good label's group is missing: %s", out)
	}
	checkKnownHosts(t, e.home)
}
