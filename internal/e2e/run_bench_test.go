//go:build unix

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// BenchmarkRun200 runs `uname -a` on 200 emulator nodes (builtin sshd, the
// default 1 s propagation delay) three ways, each from a keyless HOME:
// `gkessh run --all`, Ansible's command module at -f 50 through `gkessh
// inventory` (ProxyCommand gkessh proxy), and a shell loop of `gkessh NODE
// -- uname -a`. It reports each one's wall time, the peak RSS of its
// largest process, the tunnels it opened and the metadata writes it made,
// how many nodes answered, and run's speed-up over Ansible and the loop.
func BenchmarkRun200(b *testing.B) {
	need(b, "ssh", "ansible")
	const nodes = 200
	w := startEmulator(b, "--nodes", fmt.Sprint(nodes))
	user := loginUser(b)
	var names []string
	for _, n := range w.nodes() {
		names = append(names, n.Name)
	}
	type result struct {
		wall            time.Duration
		rss             float64
		tunnels, writes int64
		answers         int64
	}
	// way runs one way from a fresh, keyless HOME and checks that every
	// node answered.
	way := func(name string, i int, args ...string) result {
		home := filepath.Join(w.home, fmt.Sprintf("%s-%d", name, i))
		if err := os.MkdirAll(home, 0o700); err != nil {
			b.Fatal(err)
		}
		inv := filepath.Join(home, "inventory")
		os.WriteFile(inv, []byte(fmt.Sprintf("#!/bin/sh\nexec gkessh inventory --user %s \"$@\"\n", user)), 0o755)
		cmd := w.command(args[0], args[1:]...)
		cmd.Env = append(cmd.Env, "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
			"ANSIBLE_SSH_CONTROL_PATH_DIR="+filepath.Join(home, "cp"), "ANSIBLE_LOCAL_TEMP="+filepath.Join(home, "tmp"),
			"INVENTORY="+inv)
		cmd.Dir = home
		w.control("POST", "/control/stats/reset", nil, nil)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		wall := time.Since(start)
		stopMasters(filepath.Join(home, "cp"))
		// A way that loses nodes is reported, not fatal: that is a result.
		answers := int64(len(unameLine.FindAllIndex(out, -1)))
		if err != nil || answers < nodes {
			b.Logf("%s: %v, %d of %d nodes answered; what went wrong:\n%s", name, err, answers, nodes, failures(out))
		}
		st := w.stats()
		return result{wall, peakRSS(cmd), st.Tunnels, st.MetadataWrites, answers}
	}
	var run, ansible, loop result
	add := func(sum *result, r result) {
		sum.wall += r.wall
		sum.rss = max(sum.rss, r.rss)
		sum.tunnels += r.tunnels
		sum.writes += r.writes
		sum.answers += r.answers
	}
	for i := 0; i < b.N; i++ {
		add(&run, way("run", i, "gkessh", "run", "--user", user, "--all", "--", "uname", "-a"))
		add(&ansible, way("ansible", i, "sh", "-c", `exec ansible all -i "$INVENTORY" -m command -a 'uname -a' -f 50`))
		add(&loop, way("loop", i, "sh", "-c", fmt.Sprintf("for n in %s; do gkessh --user %s $n -- uname -a || exit; done", strings.Join(names, " "), user)))
	}
	n := float64(b.N)
	for _, m := range []struct {
		name string
		r    result
	}{{"run", run}, {"ansible", ansible}, {"loop", loop}} {
		b.ReportMetric(m.r.wall.Seconds()/n, "s-"+m.name+"/op")
		b.ReportMetric(m.r.rss, "MiB-"+m.name)
		b.ReportMetric(float64(m.r.tunnels)/n, "tunnels-"+m.name+"/op")
		b.ReportMetric(float64(m.r.writes)/n, "writes-"+m.name+"/op")
		b.ReportMetric(float64(m.r.answers)/n, "answered-"+m.name+"/op")
	}
	b.ReportMetric(ansible.wall.Seconds()/run.wall.Seconds(), "ansible/run")
	b.ReportMetric(loop.wall.Seconds()/run.wall.Seconds(), "loop/run")
}

// unameLine is one node's `uname -a`, bare (Ansible, the loop) or after
// run's "NODE: " prefix.
var unameLine = regexp.MustCompile(`(?m)^(\S+: +)?Linux `)

// failures picks the lines of out that say a node failed (Ansible's
// UNREACHABLE and FAILED, gkessh's messages), at most 20.
func failures(out []byte) string {
	var bad []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "UNREACHABLE") || strings.Contains(l, "FAILED") || strings.Contains(l, `"msg"`) || strings.Contains(l, "gkessh:") {
			bad = append(bad, l)
		}
	}
	return strings.Join(bad[:min(len(bad), 20)], "\n")
}
