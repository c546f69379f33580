//go:build unix

package e2e

import (
	"bufio"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
)

// The OpenSSH benchmarks run real ssh through the block `gkessh config-ssh`
// writes (ProxyCommand gkessh proxy, the gce-emulator process's relay, its
// openssh-mode node), next to the same ssh through the raw TCP hops an
// IAP-less setup would use (ProxyCommand nc → socat → sshd) and straight to
// sshd. The relay runs in its own process, as socat does and as IAP's is
// remote: in the benchmark's process it would share a runtime with the
// harness. Run them with `make bench`.

const sshPayload = 64 << 20

// sshBench is an emulator with one openssh-mode node, a config block for
// it with the key staged, and socat forwarding a loopback port to its sshd.
type sshBench struct {
	w     *world
	node  emulator.NodeInfo
	cfg   string // ~/.ssh/config with the gkessh block
	socat string // socat's listen address
}

func newSSHBench(b *testing.B) *sshBench {
	b.Helper()
	need(b, "ssh", "socat", "nc")
	w := startEmulator(b, "--sshd", "openssh", "--nodes", "1", "--propagation-delay", "100ms")
	w.run("gkessh", "config-ssh", "--user", loginUser(b))
	e := &sshBench{w: w, node: w.nodes()[0], cfg: filepath.Join(w.home, ".ssh", "config")}
	w.output("ssh", "-F", e.cfg, e.node.Name, "true") // stages the key, fills the caches
	e.socat = startSocat(b, e.node.SSHAddr)
	return e
}

// sshPath is one way for ssh to reach the node's sshd: options that
// override the config block's ProxyCommand, or none for the block's own.
// The block's user, key and pinned host key apply to all.
type sshPath struct {
	name string
	args []string
	env  []string // added to ssh's environment, so to its ProxyCommand's
}

func (e *sshBench) paths() []sshPath {
	host, port, _ := net.SplitHostPort(e.node.SSHAddr)
	return []sshPath{
		{name: "proxy"},
		{name: "raw", args: []string{"-o", "ProxyCommand=nc " + strings.Replace(e.socat, ":", " ", 1)}},
		{name: "direct", args: []string{"-o", "ProxyCommand=none", "-o", "HostName=" + host, "-o", "Port=" + port}},
	}
}

// startSocat runs socat forwarding a loopback port to target, and stops it
// with the benchmark.
func startSocat(b *testing.B, target string) string {
	b.Helper()
	return startListening(b, "socat", func(port string) *exec.Cmd {
		return exec.Command("socat", "TCP-LISTEN:"+port+",bind=127.0.0.1,reuseaddr,fork", "TCP:"+target)
	})
}

// transfer runs one ssh session moving sshPayload bytes up (stdin to the
// node) or down, and returns MB/s. The clock starts when the remote
// command is running, so connection set-up is not counted.
func (e *sshBench) transfer(b *testing.B, p sshPath, up bool) float64 {
	b.Helper()
	remote := "echo go; head -c " + strconv.Itoa(sshPayload) + " /dev/zero"
	if up {
		remote = "echo go; cat >/dev/null"
	}
	cmd := e.w.command("ssh", slices.Concat([]string{"-F", e.cfg}, p.args, []string{e.node.Name, remote})...)
	cmd.Env = append(cmd.Env[:len(cmd.Env):len(cmd.Env)], p.env...)
	stdin, stdout, stderr := startPiped(b, cmd)
	out := bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); err != nil || line != "go\n" {
		cmd.Wait()
		b.Fatalf("%s: ssh did not start the command: %q %v; stderr %s", p.name, line, err, stderr.String())
	}
	start := time.Now()
	var n int64
	buf := make([]byte, 1<<20)
	if up {
		for n < sshPayload {
			k, err := stdin.Write(buf)
			n += int64(k)
			if err != nil {
				b.Fatalf("%s: upload: %v", p.name, err)
			}
		}
		stdin.Close()
		drain(out, buf)
	} else {
		stdin.Close()
		var err error
		if n, err = drain(out, buf); err != nil {
			b.Fatalf("%s: download: %v", p.name, err)
		}
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("%s: ssh: %v; stderr %s", p.name, err, stderr.String())
	}
	elapsed := time.Since(start)
	if n != sshPayload {
		b.Fatalf("%s: moved %d bytes, want %d", p.name, n, sshPayload)
	}
	return float64(n) / 1e6 / elapsed.Seconds()
}

// drain reads r to the end in reads as big as buf: io.Copy to io.Discard
// would read 8 KiB at a time, and the harness should cost ssh little.
func drain(r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// compare runs measure four times for every path and direction,
// interleaved, since the machine is shared, and reports the best MB/s of
// each and the proxy's ratios to the raw hops and to direct ssh.
func (e *sshBench) compare(b *testing.B, measure func(p sshPath, up bool) float64) {
	best := e.best(b, e.paths(), measure)
	for _, dir := range []string{"up", "down"} {
		b.ReportMetric(best["proxy-"+dir]/best["raw-"+dir], "proxy/raw-"+dir)
		b.ReportMetric(best["proxy-"+dir]/best["direct-"+dir], "proxy/direct-"+dir)
	}
}

// best runs measure four times for every path and direction, interleaved,
// since the machine is shared, and reports and returns the best MB/s of
// each, keyed PATH-up and PATH-down.
func (e *sshBench) best(b *testing.B, paths []sshPath, measure func(p sshPath, up bool) float64) map[string]float64 {
	best := map[string]float64{}
	for range 4 {
		for _, p := range paths {
			for _, up := range []bool{true, false} {
				key := p.name + "-" + map[bool]string{true: "up", false: "down"}[up]
				best[key] = max(best[key], measure(p, up))
			}
		}
	}
	for k, v := range best {
		b.ReportMetric(v, k+"-MB/s")
	}
	return best
}

// BenchmarkSSHThroughput moves 64 MiB up and 64 MiB down in one ssh
// session through the config block ("proxy"), through ProxyCommand nc and
// socat ("raw": the same number of user-space hops, with no IAP protocol),
// and straight to sshd ("direct"), timing the data alone.
func BenchmarkSSHThroughput(b *testing.B) {
	e := newSSHBench(b)
	b.ResetTimer()
	for range b.N {
		e.compare(b, func(p sshPath, up bool) float64 { return e.transfer(b, p, up) })
	}
}

// BenchmarkSSHThroughputHTTPProxy is BenchmarkSSHThroughput's "proxy" path
// with an HTTP proxy on the way (tinyproxy, gcloud's proxy/* properties):
// the relay's websocket goes through its CONNECT. Beside it, the same with
// socat forwarding to the relay ("hop"): one more process copying the
// bytes, with no proxy protocol, what any proxy costs at least. It reports
// the MB/s of each and the ratios, side by side in one run.
func BenchmarkSSHThroughputHTTPProxy(b *testing.B) {
	e := newSSHBench(b)
	addr, _ := tinyproxy(b, "ann", "s3cret")
	host, port, _ := net.SplitHostPort(addr)
	via := sshPath{name: "tinyproxy", env: []string{"CLOUDSDK_PROXY_TYPE=http", "CLOUDSDK_PROXY_ADDRESS=" + host,
		"CLOUDSDK_PROXY_PORT=" + port, "CLOUDSDK_PROXY_USERNAME=ann", "CLOUDSDK_PROXY_PASSWORD=s3cret"}}
	hop := sshPath{name: "hop", env: []string{"GKESSH_IAP_ENDPOINT=ws://" + startSocat(b, strings.TrimPrefix(e.w.base, "http://"))}}
	b.ResetTimer()
	for range b.N {
		best := e.best(b, []sshPath{{name: "proxy"}, hop, via}, func(p sshPath, up bool) float64 { return e.transfer(b, p, up) })
		for _, dir := range []string{"up", "down"} {
			b.ReportMetric(best["tinyproxy-"+dir]/best["proxy-"+dir], "tinyproxy/direct-"+dir)
			b.ReportMetric(best["tinyproxy-"+dir]/best["hop-"+dir], "tinyproxy/hop-"+dir)
		}
	}
}

// BenchmarkSCPThroughput copies a 64 MiB file to the node and back with
// scp over the same three paths, timing whole commands: connection set-up
// included, as a user waits for it.
func BenchmarkSCPThroughput(b *testing.B) {
	need(b, "scp")
	e := newSSHBench(b)
	// The node shares this machine's file system: paths under HOME.
	src := filepath.Join(e.w.home, "payload")
	writeRandom(b, src, sshPayload)
	b.ResetTimer()
	for range b.N {
		e.compare(b, func(p sshPath, up bool) float64 {
			from, to := src, e.node.Name+":"+src+".up"
			if !up {
				from, to = e.node.Name+":"+src, src+".down"
			}
			start := time.Now()
			e.w.run("scp", slices.Concat([]string{"-q", "-F", e.cfg}, p.args, []string{from, to})...)
			return sshPayload / 1e6 / time.Since(start).Seconds()
		})
	}
}

// firstByte starts cmd and returns how long until its stdout gives a first
// byte, then kills it (sshd would otherwise wait two minutes for a client
// banner).
func firstByte(b *testing.B, cmd *exec.Cmd) time.Duration {
	b.Helper()
	start := time.Now()
	stdin, stdout, stderr := startPiped(b, cmd)
	_, err := stdout.Read(make([]byte, 1))
	d := time.Since(start)
	stdin.Close()
	cmd.Process.Kill()
	cmd.Wait()
	if err != nil {
		b.Fatalf("%v: no first byte: %v; stderr %s", cmd.Args, err, stderr.String())
	}
	return d
}

func median(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}

// BenchmarkProxyFirstByte measures how long `gkessh proxy NODE 22` takes
// from process start to the first byte of sshd's banner on its stdout: warm
// (zone cached and key known to be on the node: no API call) and cold
// (fresh cache: a lookup and the key check), next to nc through socat, and
// warm to a node port that answers at once, which leaves out sshd's own
// start-up and the key check. Medians of 15 runs, in milliseconds.
func BenchmarkProxyFirstByte(b *testing.B) {
	e := newSSHBench(b)
	banner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer banner.Close()
	go func() {
		for {
			c, err := banner.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi\n"))
			c.Close()
		}
	}()
	e.w.control("POST", "/control/nodes/"+e.node.Name, map[string]any{"ports": map[string]string{"7": banner.Addr().String()}}, nil)
	proxy := func(port string, env ...string) *exec.Cmd {
		cmd := e.w.command("gkessh", "proxy", e.node.Name, port)
		cmd.Env = append(cmd.Env, env...)
		return cmd
	}
	host, port, _ := net.SplitHostPort(e.socat)
	const runs = 15
	b.ResetTimer()
	for range b.N {
		var warm, cold, raw, bare []time.Duration
		firstByte(b, proxy("22")) // warms the zone cache for `proxy NODE`
		calls := e.w.stats().APICalls
		for range runs {
			warm = append(warm, firstByte(b, proxy("22")))
			bare = append(bare, firstByte(b, proxy("7")))
			raw = append(raw, firstByte(b, e.w.command("nc", host, port)))
		}
		warmCalls := e.w.stats().APICalls - calls
		for i := range runs {
			cache := "XDG_CACHE_HOME=" + filepath.Join(e.w.home, "cold", strconv.Itoa(i))
			cold = append(cold, firstByte(b, proxy("22", cache)))
		}
		b.ReportMetric(median(warm), "warm-ms")
		b.ReportMetric(median(cold), "cold-ms")
		b.ReportMetric(median(raw), "nc-socat-ms")
		b.ReportMetric(median(bare), "warm-no-sshd-ms")
		b.ReportMetric(float64(warmCalls), "warm-api-calls")
	}
}
