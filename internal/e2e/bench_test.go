//go:build unix

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/knownhosts"
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
	known := filepath.Join(w.home, ".ssh", knownhosts.KnownHostsName)
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
				"-o HostKeyAlias=" + knownhosts.HostAlias(n.ID), "-o UserKnownHostsFile=" + known,
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

// BenchmarkProxyRSS reports the peak resident memory of one `gkessh proxy`
// process carrying an SSH session that uploads and downloads 64 MiB.
func BenchmarkProxyRSS(b *testing.B) {
	w := startEmulator(b, "--nodes", "1", "--propagation-delay", "100ms")
	node := w.nodes()[0].Name
	user := loginUser(b)
	w.run("gkessh", "--user", user, node, "--", "true") // stage the key and caches
	kp, err := keys.Load(filepath.Join(w.home, ".ssh", "google_compute_engine"))
	if err != nil {
		b.Fatal(err)
	}
	var peak int64
	for i := 0; i < b.N; i++ {
		peak = max(peak, proxyPeakRSS(b, w, node, user, kp.Signer))
	}
	b.ReportMetric(float64(peak)/1024, "MiB-peak-RSS")
}

// proxyPeakRSS runs one proxy process as ssh would, drives an SSH session
// through its stdio, and returns the process's peak RSS in KiB.
func proxyPeakRSS(b *testing.B, w *world, node, user string, signer ssh.Signer) int64 {
	cmd := w.command("gkessh", "proxy", "--user", user, node, "22")
	stdin, stdout, stderr := startPiped(b, cmd)
	conn := stdioConn{stdout, stdin}
	cfg := &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	c, chans, reqs, err := ssh.NewClientConn(conn, node, cfg)
	if err != nil {
		b.Fatal(err)
	}
	client := ssh.NewClient(c, chans, reqs)
	for _, command := range []string{"cat >/dev/null", "head -c 67108864 /dev/zero"} {
		sess, err := client.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		sess.Stdout = io.Discard
		in, _ := sess.StdinPipe()
		if err := sess.Start(command); err != nil {
			b.Fatal(err)
		}
		if strings.HasPrefix(command, "cat") {
			io.CopyN(in, zeroReader{}, 64<<20)
		}
		in.Close()
		if err := sess.Wait(); err != nil {
			b.Fatalf("%s: %v", command, err)
		}
	}
	client.Close()
	// Read the peak before the process ends: rusage's maxrss would report
	// the forking test binary's, which exec inherits into the child's.
	hwm := vmHWM(b, cmd.Process.Pid)
	if err := stopProxy(cmd, stdin, stdout); err != nil {
		b.Fatalf("%v; stderr:\n%s", err, stderr)
	}
	return hwm
}

// TestProxyStopsWithHUPIgnored: under nohup (`make bench` in a detached
// shell) SIGHUP is ignored, and a proxy must still stop when its pipes
// close, as stopProxy closes them for BenchmarkProxyRSS.
func TestProxyStopsWithHUPIgnored(t *testing.T) {
	need(t, "sh")
	w := startEmulator(t, "--nodes", "1")
	node := w.nodes()[0].Name
	gkessh := w.command("gkessh").Path
	cmd := w.command("sh", "-c", `trap '' HUP; exec "$0" proxy --no-ensure-key "$1" 22`, gkessh, node)
	stdin, stdout, stderr := startPiped(t, cmd)
	banner, err := bufio.NewReader(stdout).ReadString('\n')
	if !strings.HasPrefix(banner, "SSH-2.0-") {
		t.Fatalf("no SSH banner through the proxy: %q, %v; stderr:\n%s", banner, err, stderr)
	}
	cmd.Process.Signal(syscall.SIGHUP) // ignored, as under nohup
	if err := stopProxy(cmd, stdin, stdout); err != nil {
		t.Fatalf("%v; stderr:\n%s", err, stderr)
	}
}

// proxyStopTimeout bounds how long a proxy may take to exit once ssh has
// closed its pipes.
const proxyStopTimeout = 30 * time.Second

// stopProxy ends a ProxyCommand as ssh does when it exits: it closes the
// proxy's stdin and stdout, and waits. It does not send SIGHUP (which ssh
// also sends), since under nohup or `trap "" HUP` that is ignored, and a
// proxy must still stop. A proxy still running after proxyStopTimeout is
// killed and reported.
func stopProxy(cmd *exec.Cmd, stdin io.Closer, stdout io.Closer) error {
	stdin.Close()
	stdout.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return nil
	case <-time.After(proxyStopTimeout):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("gkessh proxy still running %v after its stdin and stdout were closed", proxyStopTimeout)
	}
}

// vmHWM is a process's peak resident set size in KiB.
func vmHWM(b *testing.B, pid int) int64 {
	if runtime.GOOS != "linux" {
		b.Skip("peak RSS is read from Linux's /proc")
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kib)
			return kib
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}

// stdioConn is ssh's end of a ProxyCommand's pipes.
type stdioConn struct {
	io.Reader
	io.WriteCloser
}

func (stdioConn) LocalAddr() net.Addr              { return &net.UnixAddr{Name: "stdio"} }
func (stdioConn) RemoteAddr() net.Addr             { return &net.UnixAddr{Name: "stdio"} }
func (stdioConn) SetDeadline(time.Time) error      { return nil }
func (stdioConn) SetReadDeadline(time.Time) error  { return nil }
func (stdioConn) SetWriteDeadline(time.Time) error { return nil }

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }
