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

const copyPayload = 256 << 20

// BenchmarkCopy256 copies one 256 MiB file to an openssh-mode node and back
// with `gkessh cp` (SFTP on gkessh's own SSH client through its IAP
// tunnel) and with OpenSSH's scp through the block `gkessh config-ssh`
// writes (ProxyCommand gkessh proxy: the same relay, the same sshd), both
// warm, timing whole commands. Four rounds, interleaved, since the machine
// is shared: the best MB/s of each, cp's ratio to scp each way, and the
// least CPU time (user and system, scp's with its ssh and gkessh proxy)
// each spent on a copy, which load moves less than wall time.
func BenchmarkCopy256(b *testing.B) {
	need(b, "scp")
	e := newSSHBench(b)
	user := loginUser(b)
	src := filepath.Join(e.w.home, "payload256")
	writeRandom(b, src, copyPayload)
	node := e.node.Name
	e.w.run("gkessh", "cp", "--user", user, e.cfg, node+":"+src+".warm") // host keys pinned, zone cached
	ways := map[string][]string{
		"cp":  {"gkessh", "cp", "--user", user},
		"scp": {"scp", "-q", "-F", e.cfg},
	}
	b.ResetTimer()
	for range b.N {
		best, cpu := map[string]float64{}, map[string]float64{}
		for range 4 {
			for _, way := range []string{"cp", "scp"} {
				for _, up := range []bool{true, false} {
					from, to := src, node+":"+src+".up"
					if !up {
						from, to = node+":"+src+".up", src+".down"
					}
					cmd := e.w.command(ways[way][0], append(ways[way][1:], from, to)...)
					start := time.Now()
					if out, err := cmd.CombinedOutput(); err != nil {
						b.Fatalf("%s: %v\n%s", cmd.Args, err, out)
					}
					mbs := copyPayload / 1e6 / time.Since(start).Seconds()
					used := (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
					if a, z := sha256File(b, src), sha256File(b, strings.TrimPrefix(to, node+":")); a != z {
						b.Fatalf("%s: the copy differs", way)
					}
					key := way + "-" + map[bool]string{true: "up", false: "down"}[up]
					best[key] = max(best[key], mbs)
					if c, ok := cpu[key]; !ok || used < c {
						cpu[key] = used
					}
				}
			}
		}
		for k, v := range best {
			b.ReportMetric(v, k+"-MB/s")
			b.ReportMetric(cpu[k], k+"-cpu-s")
		}
		b.ReportMetric(best["cp-up"]/best["scp-up"], "cp/scp-up")
		b.ReportMetric(best["cp-down"]/best["scp-down"], "cp/scp-down")
	}
}

// BenchmarkCopy200 pushes one 10 MiB file to 200 emulator nodes (builtin
// sshd) with `gkessh cp --all` and with Ansible's copy module at -f 50
// through `gkessh inventory` (ProxyCommand gkessh proxy), both warm: each
// way has run once before the timed run, so the key is in metadata, the
// host keys are pinned and Ansible's connections persist. Each timed run
// copies afresh into an empty directory. It reports each way's wall time,
// its CPU time on this side (user and system, with every process it
// waited for: Ansible's forks and ssh, gkessh proxy), which load moves less
// than wall time, the nodes that took the file, and Ansible's time over
// cp's.
func BenchmarkCopy200(b *testing.B) {
	need(b, "ssh", "ansible")
	const nodes = 200
	w := startEmulator(b, "--nodes", fmt.Sprint(nodes))
	w.primeListing(b)
	user := loginUser(b)
	src := filepath.Join(w.home, "payload10")
	writeRandom(b, src, 10<<20)
	inv := filepath.Join(w.home, "inventory")
	os.WriteFile(inv, []byte(fmt.Sprintf("#!/bin/sh\nexec gkessh inventory --user %s \"$@\"\n", user)), 0o755)
	dest := filepath.Join(w.home, "dest")
	way := func(name string, done *regexp.Regexp, args ...string) (time.Duration, time.Duration, int) {
		os.RemoveAll(dest)
		os.Mkdir(dest, 0o755)
		cmd := w.command(args[0], args[1:]...)
		cmd.Env = append(cmd.Env, "ANSIBLE_SSH_CONTROL_PATH_DIR="+filepath.Join(w.home, "cp"), "ANSIBLE_HOST_KEY_CHECKING=False")
		cmd.Dir = w.home
		start := time.Now()
		out, err := cmd.CombinedOutput()
		wall := time.Since(start)
		used := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		n := len(done.FindAllIndex(out, -1))
		if err != nil || n < nodes {
			b.Logf("%s: %v, %d of %d nodes took the file; what went wrong:\n%s", name, err, n, nodes, failures(out))
		}
		return wall, used, n
	}
	cp := func() (time.Duration, time.Duration, int) {
		return way("cp", cpDone, "gkessh", "cp", "--user", user, "--all", src, ":"+dest+"/")
	}
	ansible := func() (time.Duration, time.Duration, int) {
		return way("ansible", ansibleChanged, "ansible", "all", "-i", inv, "-f", "50", "-m", "copy",
			"-a", "src="+src+" dest="+dest+"/{{ inventory_hostname }}")
	}
	cp()
	ansible()
	b.ResetTimer()
	var cpWall, ansWall, cpCPU, ansCPU time.Duration
	var cpN, ansN int
	for range b.N {
		w1, c1, n1 := cp()
		w2, c2, n2 := ansible()
		cpWall, ansWall, cpN, ansN = cpWall+w1, ansWall+w2, cpN+n1, ansN+n2
		cpCPU, ansCPU = cpCPU+c1, ansCPU+c2
	}
	stopMasters(filepath.Join(w.home, "cp"))
	n := float64(b.N)
	b.ReportMetric(cpWall.Seconds()/n, "s-cp/op")
	b.ReportMetric(ansWall.Seconds()/n, "s-ansible/op")
	b.ReportMetric(cpCPU.Seconds()/n, "cpu-s-cp/op")
	b.ReportMetric(ansCPU.Seconds()/n, "cpu-s-ansible/op")
	b.ReportMetric(float64(cpN)/n, "nodes-cp/op")
	b.ReportMetric(float64(ansN)/n, "nodes-ansible/op")
	b.ReportMetric(ansWall.Seconds()/cpWall.Seconds(), "ansible/cp")
}

var (
	cpDone         = regexp.MustCompile(`(?m)^\S+: +ok, 10\.0 MiB in 1 file`)
	ansibleChanged = regexp.MustCompile(`(?m)^\S+ \| CHANGED`)
)
