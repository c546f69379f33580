package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/sshconfig"
)

// BenchmarkAnsiblePing20 times `ansible all -m ping -f 20` over 20 nodes
// through gkessh (dynamic inventory, ProxyCommand gkessh proxy, warm
// caches) and, in the same run, against the same sshds directly, with the
// same key, user and host key checks. Each round starts with no
// ControlPersist masters, so every connection is set up anew.
func BenchmarkAnsiblePing20(b *testing.B) {
	need(b, "ssh", "ansible")
	w := startEmulator(b, "--sshd", "openssh", "--nodes", "20", "--propagation-delay", "100ms")
	user := loginUser(b)
	inv := inventoryScript(b, w, user)

	round := func(name, inventory string, i int) time.Duration {
		cp := filepath.Join(w.home, fmt.Sprintf("cp-%s-%d", name, i))
		start := time.Now()
		cmd := w.command("ansible", "all", "-i", inventory, "-m", "ping", "-f", "20")
		cmd.Env = append(cmd.Env, "ANSIBLE_SSH_CONTROL_PATH_DIR="+cp)
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		stopMasters(cp)
		if err != nil || strings.Count(string(out), "SUCCESS") != 20 {
			b.Fatalf("%s: %v\n%s", name, err, out)
		}
		return d
	}
	round("warm-up", inv, 0) // stages the key, pins host keys, fills caches
	direct := directInventory(b, w, user)
	var viaGkessh, viaDirect time.Duration
	for i := 0; i < b.N; i++ {
		viaDirect += round("direct", direct, i)
		viaGkessh += round("gkessh", inv, i)
	}
	b.ReportMetric(viaGkessh.Seconds()/float64(b.N), "s-gkessh/op")
	b.ReportMetric(viaDirect.Seconds()/float64(b.N), "s-direct/op")
	b.ReportMetric(viaGkessh.Seconds()/viaDirect.Seconds(), "gkessh/direct")
}

// directInventory is a static inventory reaching each node's sshd on
// loopback with the options gkessh would use, minus the ProxyCommand.
func directInventory(b *testing.B, w *world, user string) string {
	known := filepath.Join(w.home, ".ssh", sshconfig.KnownHostsName)
	key := filepath.Join(w.home, ".ssh", "google_compute_engine")
	hosts := map[string]map[string]string{}
	for _, n := range w.nodes() {
		host, port, err := net.SplitHostPort(n.SSHAddr)
		if err != nil {
			b.Fatal(err)
		}
		hosts[n.Name] = map[string]string{
			"ansible_host":                 host,
			"ansible_port":                 port,
			"ansible_user":                 user,
			"ansible_ssh_private_key_file": key,
			"ansible_ssh_common_args": strings.Join([]string{
				"-o HostKeyAlias=" + sshconfig.HostAlias(n.ID), "-o UserKnownHostsFile=" + known,
				"-o StrictHostKeyChecking=yes", "-o IdentitiesOnly=yes", "-o CheckHostIP=no",
			}, " "),
		}
	}
	js, err := json.Marshal(map[string]any{"all": map[string]any{"hosts": hosts}})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(w.home, "direct.json")
	if err := os.WriteFile(path, js, 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}
