//go:build unix

package emulator

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"golang.org/x/crypto/ssh"
)

// opensshSSHD runs the real OpenSSH sshd for a node, with a generated
// config, the node's host keys and one authorized_keys file per user, all
// in the node's directory. Logins work only for the OS user running the
// emulator (root in CI), since sshd checks that the user exists.
type opensshSSHD struct {
	dir  string
	keys []ssh.PublicKey
	logf func(string, ...any)

	life sync.Mutex // serializes Start, Stop, Close and SetAuthorized

	mu     sync.Mutex
	port   int
	addr   string        // "" while stopped
	cmd    *exec.Cmd     // the listening sshd
	exited chan struct{} // closed when cmd has been waited for
}

// SSHDPath is the OpenSSH server binary the openssh mode runs: sshd in
// PATH, else where packages put it (sbin is often not in a user's PATH);
// "" when there is none.
var SSHDPath = findSSHD()

func findSSHD() string {
	if p, err := exec.LookPath("sshd"); err == nil && filepath.IsAbs(p) {
		return p // sshd re-executes itself, so it needs an absolute path
	}
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd", "/opt/homebrew/sbin/sshd"} {
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	return ""
}

func newOpenSSHD(dir string, keys []hostKey, logf func(string, ...any)) (*opensshSSHD, error) {
	if SSHDPath == "" {
		return nil, errors.New("emulator sshd: --sshd openssh needs OpenSSH's server, sshd, in PATH or /usr/sbin (apt-get install openssh-server), or use --sshd builtin")
	}
	if err := os.MkdirAll(filepath.Join(dir, "authorized_keys"), 0o700); err != nil {
		return nil, fmt.Errorf("emulator sshd: %w", err)
	}
	for _, k := range keys {
		block, err := ssh.MarshalPrivateKey(k.priv, "")
		if err != nil {
			return nil, fmt.Errorf("emulator sshd: encode host key: %w", err)
		}
		if err := os.WriteFile(hostKeyPath(dir, k.signer.PublicKey()), pem.EncodeToMemory(block), 0o600); err != nil {
			return nil, fmt.Errorf("emulator sshd: %w", err)
		}
	}
	d := &opensshSSHD{dir: dir, keys: publicKeys(keys), logf: logf}
	if err := d.Start(); err != nil {
		return nil, err
	}
	return d, nil
}

func hostKeyPath(dir string, k ssh.PublicKey) string {
	name := strings.TrimPrefix(k.Type(), "ssh-")
	if strings.HasPrefix(name, "ecdsa") {
		name = "ecdsa"
	}
	return filepath.Join(dir, "ssh_host_"+name+"_key")
}

// Addr implements nodeSSHD.
func (d *opensshSSHD) Addr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addr
}

// HostKeys implements nodeSSHD.
func (d *opensshSSHD) HostKeys() []ssh.PublicKey { return d.keys }

// SetAuthorized implements nodeSSHD: it writes each user's file whole and
// renames it into place, since sshd reads it on every login attempt, and
// removes the files of users no longer listed.
func (d *opensshSSHD) SetAuthorized(byUser map[string][]ssh.PublicKey) error {
	d.life.Lock()
	defer d.life.Unlock()
	akDir := filepath.Join(d.dir, "authorized_keys")
	for user, keys := range byUser {
		if user == "" || strings.ContainsAny(user, "/\x00") || strings.HasPrefix(user, ".") {
			return fmt.Errorf("emulator sshd: refusing user name %q", user)
		}
		var b bytes.Buffer
		for _, k := range keys {
			b.Write(ssh.MarshalAuthorizedKey(k))
		}
		tmp := filepath.Join(akDir, "."+user+".tmp")
		if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
			return fmt.Errorf("emulator sshd: write authorized keys of %s: %w", user, err)
		}
		if err := os.Rename(tmp, filepath.Join(akDir, user)); err != nil {
			return fmt.Errorf("emulator sshd: install authorized keys of %s: %w", user, err)
		}
	}
	entries, err := os.ReadDir(akDir)
	if err != nil {
		return fmt.Errorf("emulator sshd: %w", err)
	}
	for _, e := range entries {
		if _, ok := byUser[e.Name()]; !ok && !strings.HasPrefix(e.Name(), ".") {
			if err := os.Remove(filepath.Join(akDir, e.Name())); err != nil {
				return fmt.Errorf("emulator sshd: remove authorized keys of %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

var sshdConfig = template.Must(template.New("sshd_config").Parse(`# Written by gce-emulator on every start of this node's sshd.
ListenAddress 127.0.0.1:{{.Port}}
{{range .HostKeys}}HostKey {{.}}
{{end}}AuthorizedKeysFile {{.Dir}}/authorized_keys/%u
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PidFile {{.Dir}}/sshd.pid
Subsystem sftp internal-sftp
AcceptEnv LANG LC_*
PrintMotd no
PrintLastLog no
UseDNS no
MaxStartups 200
MaxSessions 100
LogLevel ERROR
{{.Extra}}{{if .OnlyUser}}
# Not root, this sshd can log in only as the OS user running it: for any
# other user it refuses keys outright and says why, so that a client stops
# waiting for a key to propagate.
Match User *,!{{.OnlyUser}}
	PubkeyAuthentication no
	Banner {{.Dir}}/banner-not-root
{{end}}`))

// penaltiesOption turns off OpenSSH 9.8's per-source penalties, which
// would otherwise lock out the client retrying while a key propagates; older
// sshd versions reject the option, so it is probed once (sshd -t wants a
// host key, hence the argument).
func penaltiesOption(hostKey string) string {
	penaltiesOnce.Do(func() {
		if exec.Command(SSHDPath, "-t", "-f", "/dev/null", "-o", "HostKey="+hostKey, "-o", "PerSourcePenalties=no").Run() == nil {
			penalties = "PerSourcePenalties no\n"
		}
	})
	return penalties
}

var (
	penaltiesOnce sync.Once
	penalties     string
)

// Start implements nodeSSHD: it writes the config, runs sshd -D and waits
// until it accepts connections.
func (d *opensshSSHD) Start() error {
	d.life.Lock()
	defer d.life.Unlock()
	d.mu.Lock()
	running := d.cmd != nil
	d.mu.Unlock()
	if running {
		return nil
	}
	// sshd needs its privilege separation directory, normally made by the
	// package's service unit.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil && os.Geteuid() == 0 {
		return fmt.Errorf("emulator sshd: %w", err)
	}
	ln, err := listenLoopback(d.port)
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // sshd binds it again below
	cfgPath, err := d.writeConfig(port)
	if err != nil {
		return err
	}
	stderr := &logTail{logf: d.logf, prefix: "sshd " + filepath.Base(filepath.Dir(d.dir)) + ": "}
	cmd := exec.Command(SSHDPath, "-D", "-e", "-f", cfgPath)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("emulator sshd: run %s: %w", SSHDPath, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitListening(addr, exited); err != nil {
		killTree(cmd.Process.Pid)
		<-exited
		return fmt.Errorf("emulator sshd: %s did not start on %s: %w: %s", SSHDPath, addr, err, stderr.String())
	}
	d.mu.Lock()
	d.cmd, d.exited, d.port, d.addr = cmd, exited, port, addr
	d.mu.Unlock()
	return nil
}

// writeConfig writes the sshd_config for port, with its refusal banners.
func (d *opensshSSHD) writeConfig(port int) (string, error) {
	onlyUser, err := nonRootUser()
	if err != nil {
		return "", err
	}
	if onlyUser != "" {
		banner := fmt.Sprintf("gce-emulator: this node's sshd runs as OS user %s, not root, so it can log in only as %s\n", onlyUser, onlyUser)
		if err := os.WriteFile(filepath.Join(d.dir, "banner-not-root"), []byte(banner), 0o644); err != nil {
			return "", fmt.Errorf("emulator sshd: %w", err)
		}
	}
	var hostKeys []string
	for _, k := range d.keys {
		hostKeys = append(hostKeys, hostKeyPath(d.dir, k))
	}
	var cfg bytes.Buffer
	if err := sshdConfig.Execute(&cfg, map[string]any{"Port": port, "HostKeys": hostKeys, "Dir": d.dir, "Extra": penaltiesOption(hostKeys[0]),
		"OnlyUser": onlyUser}); err != nil {
		return "", fmt.Errorf("emulator sshd: %w", err)
	}
	cfgPath := filepath.Join(d.dir, "sshd_config")
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o600); err != nil {
		return "", fmt.Errorf("emulator sshd: %w", err)
	}
	return cfgPath, nil
}

// nonRootUser is the OS user running the emulator when it is not root: the
// only account its sshd can log in.
func nonRootUser() (string, error) {
	if os.Geteuid() == 0 {
		return "", nil
	}
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("emulator sshd: %w", err)
	}
	return u.Username, nil
}

// waitListening polls addr until it accepts a connection, the process
// exits or five seconds pass.
func waitListening(addr string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var dialer net.Dialer
	for {
		c, err := dialer.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("sshd exited")
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Stop implements nodeSSHD. It ends open sessions too, as a reboot would,
// so that no process is left behind.
func (d *opensshSSHD) Stop() error {
	d.life.Lock()
	defer d.life.Unlock()
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.cmd, d.addr = nil, ""
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	killTree(cmd.Process.Pid)
	<-exited
	return nil
}

// Close implements nodeSSHD: it stops sshd and removes the node's files.
func (d *opensshSSHD) Close() error {
	if err := d.Stop(); err != nil {
		return err
	}
	return os.RemoveAll(d.dir)
}

// killTree kills pid and all its descendants. sshd forks a process per
// connection in a new session, and those outlive a killed listener, so the
// tree is frozen with SIGSTOP (no more forks) until it stops growing, then
// killed at once.
func killTree(pid int) {
	frozen := map[int]bool{}
	for {
		tree := descendants(pid)
		tree = append(tree, pid)
		grew := false
		for _, p := range tree {
			if !frozen[p] {
				syscall.Kill(p, syscall.SIGSTOP)
				frozen[p] = true
				grew = true
			}
		}
		if !grew {
			break
		}
	}
	for p := range frozen {
		syscall.Kill(p, syscall.SIGKILL)
	}
}

// descendants lists the processes below pid, from ps, which reads them
// the same way on Linux and macOS.
func descendants(pid int) []int {
	out, err := exec.Command("ps", "-A", "-o", "pid=", "-o", "ppid=").Output()
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		p, err1 := strconv.Atoi(f[0])
		ppid, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var tree []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		tree = append(tree, children[p]...)
		queue = append(queue, children[p]...)
	}
	return tree
}

// logTail forwards sshd's stderr to the emulator log and keeps the last
// few kilobytes for start-up errors.
type logTail struct {
	logf   func(string, ...any)
	prefix string

	mu   sync.Mutex
	tail []byte
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tail = append(l.tail, p...)
	if over := len(l.tail) - 4096; over > 0 {
		l.tail = l.tail[over:]
	}
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		l.logf("%s%s", l.prefix, line)
	}
	return len(p), nil
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(string(l.tail))
}
