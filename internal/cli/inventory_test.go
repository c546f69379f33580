//go:build unix

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/knownhosts"
)

func TestInventory(t *testing.T) {
	t.Parallel()
	e := newEmuEnv(t, emulator.Config{Nodes: 3})
	run := func(host string) string {
		t.Helper()
		var out bytes.Buffer
		stdio := Stdio{Out: &out, Err: io.Discard}
		o := inventoryOptions{openSSHOptions: openSSHOptions{globalOptions: e.options(), keyOptions: keyOptions{User: "nat"}, Strict: "yes"}, Host: host}
		if err := runInventory(context.Background(), o, e.deps(stdio), stdio); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	out := run("")
	var inv map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	var meta struct {
		HostVars map[string]map[string]string `json:"hostvars"`
	}
	if err := json.Unmarshal(inv["_meta"], &meta); err != nil {
		t.Fatal(err)
	}
	group := func(name string) []string {
		var g struct{ Hosts []string }
		if err := json.Unmarshal(inv[name], &g); err != nil {
			t.Fatalf("group %s: %v", name, err)
		}
		return g.Hosts
	}
	if got := group("zone_us_west1_a"); len(got) != 2 {
		t.Errorf("zone_us_west1_a = %v, want 2 nodes", got)
	}
	if got := group("cluster_cluster"); len(got) != 3 {
		t.Errorf("cluster_cluster = %v, want 3 nodes", got)
	}
	if got := group("pool_default_pool"); len(got) != 3 {
		t.Errorf("pool_default_pool = %v", got)
	}
	for _, name := range e.srv.Nodes() {
		hv := meta.HostVars[name]
		args := hv["ansible_ssh_common_args"]
		n := e.srv.Node(name)
		if hv["ansible_host"] != name || hv["ansible_user"] != "nat" || hv["ansible_ssh_timeout"] != "150" || !strings.Contains(args, "HostKeyAlias="+knownhosts.HostAlias(n.ID)) || !strings.Contains(args, fmt.Sprintf("proxy --user %%r --project demo-project --instance-id %d --zone %s %%h %%p", n.ID, n.Zone)) {
			t.Errorf("hostvars for %s: %v", name, hv)
		}
	}
	one := run(e.srv.Nodes()[0])
	if !strings.Contains(one, `"ansible_host": "`+e.srv.Nodes()[0]+`"`) {
		t.Fatalf("--host: %s", one)
	}
}
