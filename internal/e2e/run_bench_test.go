//go:build unix

package e2e

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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
	w.primeListing(b)
	user := loginUser(b)
	var names []string
	for _, n := range w.nodes() {
		names = append(names, n.Name)
	}
	// way runs one way from a fresh, keyless HOME and checks that every
	// node answered.
	way := func(name string, i int, args ...string) measured {
		home := w.newHome(b, fmt.Sprintf("%s-%d", name, i))
		inv := filepath.Join(home, "inventory")
		os.WriteFile(inv, []byte(fmt.Sprintf("#!/bin/sh\nexec gkessh inventory --user %s \"$@\"\n", user)), 0o755)
		m := w.measure(home, []string{"ANSIBLE_SSH_CONTROL_PATH_DIR=" + filepath.Join(home, "cp"),
			"ANSIBLE_LOCAL_TEMP=" + filepath.Join(home, "tmp"), "INVENTORY=" + inv}, args...)
		stopMasters(filepath.Join(home, "cp"))
		// A way that loses nodes is reported, not fatal: that is a result.
		m.answers = int64(len(unameLine.FindAllIndex(m.out, -1)))
		if m.err != nil || m.answers < nodes {
			b.Logf("%s: %v, %d of %d nodes answered; what went wrong:\n%s", name, m.err, m.answers, nodes, failures(m.out))
		}
		return m
	}
	var run, ansible, loop measured
	for i := 0; i < b.N; i++ {
		run.add(way("run", i, "gkessh", "run", "--user", user, "--all", "--", "uname", "-a"))
		ansible.add(way("ansible", i, "sh", "-c", `exec ansible all -i "$INVENTORY" -m command -a 'uname -a' -f 50`))
		loop.add(way("loop", i, "sh", "-c", fmt.Sprintf("for n in %s; do gkessh --user %s $n -- uname -a || exit; done", strings.Join(names, " "), user)))
	}
	n := float64(b.N)
	for _, m := range []struct {
		name string
		r    measured
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

// BenchmarkFleet measures gkessh alone at 200 and at 1000 emulator nodes
// (builtin sshd, 1 s propagation delay), one emulator at a time, stopped
// before the next: `run --all -- true` cold (a keyless HOME: one metadata
// write), then warm three times, and `config-ssh` and `inventory --list`
// each from a fresh HOME (every host key pinned anew). For each it
// reports wall time, the client's CPU time (user and system) per node,
// the emulator's CPU per node (with its helper's, not the node commands';
// read from /proc, Linux only: on this
// machine it shares the CPUs with the client, so a slow emulator slows
// the client's wall time, not its CPU), peak RSS, metadata writes and
// nodes ok; and the time ratio of 1000 nodes to 200 (5x the nodes) for
// the warm run. Warm figures are the median of three runs; the log has
// each run. Beside each size it reports this machine's speed at the time,
// the µs one X25519 key generation takes (x25519-us): on a shared host
// the same binaries' times vary with it. With GKESSH_BENCH_PROFILE=DIR
// the commands and the emulator write CPU and allocation profiles there
// (internal/devprof).
func BenchmarkFleet(b *testing.B) {
	sizes := []int{200, 1000}
	warm := map[int]measured{}
	for _, nodes := range sizes {
		for _, e := range profileEnv(fmt.Sprintf("emulator-%d", nodes)) {
			k, v, _ := strings.Cut(e, "=")
			b.Setenv(k, v) // the emulator inherits this process's environment
		}
		w := startEmulator(b, "--nodes", fmt.Sprint(nodes))
		user := loginUser(b)
		step := func(name string, home string, args ...string) measured {
			label := fmt.Sprintf("%s-%d", name, nodes)
			m := w.measure(home, profileEnv(label), args...)
			if ok := fleetOK(m.out); m.err != nil || (ok >= 0 && ok != nodes) {
				b.Errorf("%s: %v, %d of %d nodes ok; what went wrong:\n%s", label, m.err, ok, nodes, failures(m.out))
			}
			b.Logf("%s: %v wall, %.2f ms CPU per node (emulator %.2f), %.0f MiB, %d metadata writes",
				label, m.wall.Round(time.Millisecond), m.perNode(m.cpu, nodes), m.perNode(m.emuCPU, nodes), m.rss, m.writes)
			return m
		}
		report := func(name string, m measured) {
			sfx := fmt.Sprintf("-%s-%d", name, nodes)
			b.ReportMetric(m.wall.Seconds(), "s"+sfx)
			b.ReportMetric(m.perNode(m.cpu, nodes), "cpu-ms/node"+sfx)
			if m.emuCPU > 0 {
				b.ReportMetric(m.perNode(m.emuCPU, nodes), "emu-cpu-ms/node"+sfx)
			}
			b.ReportMetric(m.rss, "MiB"+sfx)
		}
		b.ReportMetric(x25519Micros(b), fmt.Sprintf("x25519-us-%d", nodes))
		w.primeListing(b)
		home := w.newHome(b, fmt.Sprintf("run-%d", nodes))
		runArgs := []string{"gkessh", "run", "--user", user, "--all", "--", "true"}
		cold := step("cold", home, runArgs...)
		report("cold", cold)
		b.ReportMetric(float64(cold.writes), fmt.Sprintf("writes-cold-%d", nodes))
		var warms []measured
		for i := range 3 {
			warms = append(warms, step(fmt.Sprintf("warm%d", i+1), home, runArgs...))
		}
		slices.SortFunc(warms, func(x, y measured) int { return int(x.wall - y.wall) })
		warm[nodes] = warms[1]
		report("warm", warms[1])
		b.ReportMetric(float64(warms[1].writes), fmt.Sprintf("writes-warm-%d", nodes))
		report("config-ssh", step("config-ssh", w.newHome(b, fmt.Sprintf("config-ssh-%d", nodes)), "gkessh", "config-ssh", "--user", user))
		report("inventory", step("inventory", w.newHome(b, fmt.Sprintf("inventory-%d", nodes)), "gkessh", "inventory", "--user", user, "--list"))
		w.stop() // no 1000-node emulator left running while the next starts
	}
	b.ReportMetric(warm[1000].wall.Seconds()/warm[200].wall.Seconds(), "warm-1000/200")
	b.ReportMetric(warm[1000].cpu.Seconds()/warm[200].cpu.Seconds(), "cpu-warm-1000/200")
}

// primeListing lists the emulator's instances once, as gkessh lists
// them. The emulator encodes an instance on its first listing (~1.6 ms of
// CPU per GKE node) and compresses a page on its first answer, costs
// Google's API does not put on the client's machine: without this the
// first way measured would pay them.
func (w *world) primeListing(tb testing.TB) {
	w.measure(w.newHome(tb, "prime"), nil, "gkessh", "audit", "--all", "--no-probe")
}

// x25519Micros is how long one X25519 key generation takes here now, in
// µs: the key exchange's main cost, a gauge of the host's speed.
func x25519Micros(tb testing.TB) float64 {
	const n = 1000
	start := time.Now()
	for range n {
		if _, err := ecdh.X25519().GenerateKey(rand.Reader); err != nil {
			tb.Fatal(err)
		}
	}
	return float64(time.Since(start).Microseconds()) / n
}

// fleetOK is the number of ok nodes in a run's summary ("N nodes: M ok"),
// or -1 when there is none (config-ssh, inventory).
func fleetOK(out []byte) int {
	m := summaryLine.FindSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

var summaryLine = regexp.MustCompile(`(?m)^\d+ nodes?: (\d+) ok`)

// measured is one timed command, or the sum of several.
type measured struct {
	wall, cpu time.Duration // cpu: user and system, with the processes it waited for
	emuCPU    time.Duration // the emulator's, meanwhile (Linux)
	rss       float64       // MiB, the largest process's peak
	tunnels   int64
	writes    int64 // metadata writes
	answers   int64
	out       []byte
	err       error
}

func (m *measured) add(r measured) {
	m.wall += r.wall
	m.cpu += r.cpu
	m.emuCPU += r.emuCPU
	m.rss = max(m.rss, r.rss)
	m.tunnels += r.tunnels
	m.writes += r.writes
	m.answers += r.answers
}

func (m measured) perNode(d time.Duration, nodes int) float64 {
	return float64(d.Microseconds()) / 1000 / float64(nodes)
}

// newHome makes an empty HOME for one measured command.
func (w *world) newHome(tb testing.TB, name string) string {
	home := filepath.Join(w.home, name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		tb.Fatal(err)
	}
	return home
}

// measure runs args in w with HOME home and env added, after resetting
// the emulator's stats, and measures it; its output is stdout and stderr
// together.
func (w *world) measure(home string, env []string, args ...string) measured {
	cmd := w.command(args[0], args[1:]...)
	cmd.Env = append(append(cmd.Env, "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, ".cache")), env...)
	cmd.Dir = home
	read := measureUsage(w.t, cmd)
	w.control("POST", "/control/stats/reset", nil, nil)
	emu0, _ := emulatorCPU(w.pid)
	out, err := cmd.CombinedOutput()
	m := measured{out: out, err: err}
	if emu1, ok := emulatorCPU(w.pid); ok {
		m.emuCPU = emu1 - emu0
	}
	if u, uerr := read(); uerr == nil {
		m.wall, m.cpu, m.rss = u.wall, u.cpu, u.rss
	} else if m.err == nil {
		m.err = uerr
	}
	st := w.stats()
	m.tunnels, m.writes = st.Tunnels, st.MetadataWrites
	return m
}

// emulatorCPU is the CPU time of the emulator and of its child processes,
// its helper among them (emulator/spawn_linux.go), not counting the node
// commands the helper ran.
func emulatorCPU(pid int) (time.Duration, bool) {
	total, ok := procCPU(pid)
	if !ok {
		return 0, false
	}
	for _, c := range childPids(pid) {
		if d, ok := procCPU(c); ok {
			total += d
		}
	}
	return total, true
}

// childPids are pid's child processes, from each of its threads' list in
// /proc (Linux).
func childPids(pid int) []int {
	var pids []int
	lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, l := range lists {
		b, _ := os.ReadFile(l)
		for _, f := range strings.Fields(string(b)) {
			if child, err := strconv.Atoi(f); err == nil {
				pids = append(pids, child)
			}
		}
	}
	return pids
}

// procCPU is a process's CPU time so far (user and system), from
// /proc/PID/stat, where Linux has it.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces: count after it.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	const userHZ = 100 // what /proc counts in on every Linux (USER_HZ)
	return time.Duration(utime+stime) * time.Second / userHZ, true
}

// profileEnv is the environment that makes a test build of a command
// write its CPU and allocation profiles under $GKESSH_BENCH_PROFILE as
// NAME.cpu and NAME.mem; nothing when that is unset.
func profileEnv(name string) []string {
	dir := os.Getenv("GKESSH_BENCH_PROFILE")
	if dir == "" {
		return nil
	}
	return []string{"GKESSH_TEST_CPUPROFILE=" + filepath.Join(dir, name+".cpu"), "GKESSH_TEST_MEMPROFILE=" + filepath.Join(dir, name+".mem")}
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
