package tunnel_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The benchmarks run real OpenSSH through `gkessh proxy` against the
// emulator's relay and its openssh-mode node, next to the same ssh through
// the raw TCP hops an IAP-less setup would use (ProxyCommand nc → socat →
// sshd) and straight to sshd. Run them with `make bench`.

const benchPayload = 64 << 20

// benchEnv adds to sshEnv the raw path's socat and a payload file.
type benchEnv struct {
	*sshEnv
	socat   string // socat's listen address, forwarding to sshd
	payload string // benchPayload random bytes
}

// sshPath is one way for ssh to reach the node's sshd.
type sshPath struct {
	name string
	args []string
}

func (e *benchEnv) paths() []sshPath {
	host, port, _ := net.SplitHostPort(e.node.SSHAddr())
	return []sshPath{
		{"proxy", e.proxyArgs()},
		{"raw", []string{"-o", "ProxyCommand=nc " + strings.Replace(e.socat, ":", " ", 1), e.node.Name}},
		{"direct", []string{"-p", port, host}},
	}
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	need(b, "socat", "nc")
	e := &benchEnv{sshEnv: newSSHEnv(b, "openssh")}
	e.socat = startSocat(b, e.node.SSHAddr())
	e.payload = filepath.Join(e.home, "payload")
	data := make([]byte, benchPayload)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(e.payload, data, 0o600); err != nil {
		b.Fatal(err)
	}
	return e
}

// startSocat runs socat forwarding a loopback port to target, and stops it
// with the benchmark.
func startSocat(b *testing.B, target string) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // socat takes the port over; nothing else binds it meanwhile
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("socat", "TCP-LISTEN:"+port+",bind=127.0.0.1,reuseaddr,fork", "TCP:"+target)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			b.Fatalf("socat not listening on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// transfer runs one ssh session moving benchPayload bytes up (stdin to the
// node) or down, and returns MB/s. The clock starts when the remote
// command is running, so connection set-up is not counted.
func (e *benchEnv) transfer(b *testing.B, p sshPath, up bool) float64 {
	b.Helper()
	remote := "echo go; head -c " + strconv.Itoa(benchPayload) + " /dev/zero"
	if up {
		remote = "echo go; cat >/dev/null"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", slices.Concat(e.sshArgs, p.args, []string{remote})...)
	cmd.Env = e.env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	out := bufio.NewReaderSize(stdout, 256<<10)
	if line, err := out.ReadString('\n'); err != nil || line != "go\n" {
		cmd.Wait()
		b.Fatalf("%s: ssh did not start the command: %q %v; stderr %s", p.name, line, err, stderr.String())
	}
	start := time.Now()
	var n int64
	if up {
		f, err := os.Open(e.payload)
		if err != nil {
			b.Fatal(err)
		}
		n, err = io.Copy(stdin, f)
		f.Close()
		if err != nil {
			b.Fatalf("%s: upload: %v", p.name, err)
		}
		stdin.Close()
		io.Copy(io.Discard, out)
	} else {
		stdin.Close()
		if n, err = io.Copy(io.Discard, out); err != nil {
			b.Fatalf("%s: download: %v", p.name, err)
		}
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("%s: ssh: %v; stderr %s", p.name, err, stderr.String())
	}
	elapsed := time.Since(start)
	if n != benchPayload {
		b.Fatalf("%s: moved %d bytes, want %d", p.name, n, benchPayload)
	}
	return float64(n) / 1e6 / elapsed.Seconds()
}

// BenchmarkSSHThroughput moves 64 MiB up and 64 MiB down with real ssh
// through `gkessh proxy` and the emulator's relay ("proxy"), through
// ProxyCommand nc and socat ("raw": the same number of user-space hops,
// with no IAP protocol), and straight to sshd ("direct"). Each is run four
// times, interleaved, and the best kept, since the machine is shared.
func BenchmarkSSHThroughput(b *testing.B) {
	e := newBenchEnv(b)
	b.ResetTimer()
	for range b.N {
		best := map[string]float64{}
		for range 4 {
			for _, p := range e.paths() {
				for _, up := range []bool{true, false} {
					key := p.name + "-" + map[bool]string{true: "up", false: "down"}[up]
					best[key] = max(best[key], e.transfer(b, p, up))
				}
			}
		}
		for k, v := range best {
			b.ReportMetric(v, k+"-MB/s")
		}
		for _, dir := range []string{"up", "down"} {
			b.ReportMetric(best["proxy-"+dir]/best["raw-"+dir], "proxy/raw-"+dir)
			b.ReportMetric(best["proxy-"+dir]/best["direct-"+dir], "proxy/direct-"+dir)
		}
	}
}

// firstByte starts name with args and returns how long until its stdout
// gives a first byte, then kills it (sshd would otherwise wait two minutes
// for a client banner).
func (e *benchEnv) firstByte(b *testing.B, env []string, name string, args ...string) time.Duration {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	_, err = stdout.Read(make([]byte, 1))
	d := time.Since(start)
	stdin.Close()
	cmd.Process.Kill()
	cmd.Wait()
	if err != nil {
		b.Fatalf("%s %v: no first byte: %v; stderr %s", name, args, err, stderr.String())
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
	e := newBenchEnv(b)
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
	e.node.ForwardPort(7, banner.Addr().String())
	const runs = 15
	b.ResetTimer()
	for range b.N {
		var warm, cold, raw, bare []time.Duration
		e.firstByte(b, e.env, e.gkessh, "proxy", e.node.Name, "22") // warms the zone cache
		calls := e.srv.Stats().APICalls
		for range runs {
			warm = append(warm, e.firstByte(b, e.env, e.gkessh, "proxy", e.node.Name, "22"))
			bare = append(bare, e.firstByte(b, e.env, e.gkessh, "proxy", e.node.Name, "7"))
			raw = append(raw, e.firstByte(b, e.env, "nc", strings.Split(e.socat, ":")...))
		}
		warmCalls := e.srv.Stats().APICalls - calls
		for i := range runs {
			coldEnv := append(slices.Clone(e.env), "XDG_CACHE_HOME="+filepath.Join(e.home, "cold", strconv.Itoa(i)))
			cold = append(cold, e.firstByte(b, coldEnv, e.gkessh, "proxy", e.node.Name, "22"))
		}
		b.ReportMetric(median(warm), "warm-ms")
		b.ReportMetric(median(cold), "cold-ms")
		b.ReportMetric(median(raw), "nc-socat-ms")
		b.ReportMetric(median(bare), "warm-no-sshd-ms")
		b.ReportMetric(float64(warmCalls), "warm-api-calls")
	}
}

// BenchmarkTunnelInProcess measures the tunnel alone, in this process:
// 64 MiB through a Conn and the emulator's relay to a node port that
// discards them (up) or sends them (down), next to the same through a plain
// TCP relay (io.Copy each way). It reports throughput and the process's CPU
// time per MB for both, and their ratio.
func BenchmarkTunnelInProcess(b *testing.B) {
	for _, up := range []bool{true, false} {
		b.Run(map[bool]string{true: "up", false: "down"}[up], func(b *testing.B) {
			serve := func(c net.Conn) {
				if up {
					io.Copy(io.Discard, c)
					return
				}
				chunk := make([]byte, 128<<10)
				for {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}
			r := newRelay(b)
			r.dialer.Logf = nil
			r.serve(b, 9, serve)
			iap := r.dial(b, 9)
			defer iap.Close()
			raw := rawRelay(b, serve)
			defer raw.Close()
			b.ResetTimer()
			for range b.N {
				iapMBs, iapCPU := move(b, iap, up)
				rawMBs, rawCPU := move(b, raw, up)
				b.ReportMetric(iapMBs, "iap-MB/s")
				b.ReportMetric(rawMBs, "raw-MB/s")
				b.ReportMetric(iapMBs/rawMBs, "iap/raw")
				b.ReportMetric(iapCPU, "iap-cpu-µs/MB")
				b.ReportMetric(rawCPU, "raw-cpu-µs/MB")
			}
		})
	}
}

// rawRelay connects to a backend running serve through a plain TCP relay.
func rawRelay(b *testing.B, serve func(net.Conn)) net.Conn {
	b.Helper()
	listen := func(handle func(net.Conn)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			handle(c)
		}()
		return ln.Addr().String()
	}
	backend := listen(serve)
	relay := listen(func(c net.Conn) {
		d, err := net.Dial("tcp", backend)
		if err != nil {
			return
		}
		defer d.Close()
		go io.Copy(d, c)
		io.Copy(c, d)
	})
	c, err := net.Dial("tcp", relay)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// move sends (up) or receives benchPayload bytes on c and returns MB/s and
// this process's CPU time per MB.
func move(b *testing.B, c net.Conn, up bool) (mbs, cpuPerMB float64) {
	b.Helper()
	buf := make([]byte, 128<<10)
	cpu0, start := cpuTime(), time.Now()
	for n := 0; n < benchPayload; n += len(buf) {
		var err error
		if up {
			_, err = c.Write(buf)
		} else {
			_, err = io.ReadFull(c, buf)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	mb := float64(benchPayload) / 1e6
	return mb / time.Since(start).Seconds(), float64((cpuTime() - cpu0).Microseconds()) / mb
}

// cpuTime is the CPU time this process used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
