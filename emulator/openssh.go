//go:build unix

package emulator

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"

	"golang.org/x/crypto/ssh"
)

// opensshSSHD runs the real OpenSSH sshd for a node, with a generated
// config, the node's host keys and one authorized_keys file per user, all
// in the node's directory. The emulator listens itself and runs one
// `sshd -i` per connection, so each login reads the config as it is then:
// the guest agent can change it without reloading a listening sshd, which
// would refuse connections while it re-executes. Logins work only for
// accounts that exist on the emulator's host, and only for the OS user
// running the emulator when it is not root.
type opensshSSHD struct {
	loopbackServer
	dir    string
	logf   func(string, ...any)
	stderr *logTail
	served sync.WaitGroup // the accept loop and one per session

	life    sync.Mutex // serializes Start, Stop, Close and SetAuthorized
	missing string     // users with keys but no local account, comma-separated; guarded by life

	sessions map[int]struct{} // pids of the running sshd -i processes; guarded by mu
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
	d := &opensshSSHD{loopbackServer: loopbackServer{keys: publicKeys(keys)}, dir: dir, logf: logf, sessions: map[int]struct{}{},
		stderr: &logTail{logf: logf, prefix: "sshd " + filepath.Base(filepath.Dir(dir)) + ": "}}
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

// SetAuthorized implements nodeSSHD: it writes each user's file whole and
// renames it into place, since sshd reads it on every login attempt, and
// removes the files of users no longer listed. Users with keys but no
// account on the emulator's host are refused outright with a banner saying
// so, since the real guest agent would have created the account.
func (d *opensshSSHD) SetAuthorized(byUser map[string][]ssh.PublicKey) error {
	d.life.Lock()
	defer d.life.Unlock()
	if missing := missingAccounts(byUser); missing != d.missing {
		d.missing = missing
		if d.port != 0 {
			if _, err := d.writeConfig(); err != nil {
				return err
			}
		}
	}
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

var sshdConfig = template.Must(template.New("sshd_config").Parse(`# Written by gce-emulator for this node's sshd -i, one per connection.
{{range .HostKeys}}HostKey {{.}}
{{end}}AuthorizedKeysFile {{.Dir}}/authorized_keys/%u
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
AcceptEnv LANG LC_*
PrintMotd no
PrintLastLog no
UseDNS no
MaxSessions 100
LogLevel ERROR
{{if .OnlyUser}}
# Not root, this sshd can log in only as the OS user running it: for any
# other user it refuses keys outright and says why, so that a client stops
# waiting for a key to propagate.
Match User *,!{{.OnlyUser}}
	PubkeyAuthentication no
	Banner {{.Dir}}/banner-not-root
{{end}}{{if .Missing}}
# Run as root, this sshd logs in any account of the emulator's host; for
# users the guest agent would have created it refuses keys and says why.
Match User {{.Missing}}
	PubkeyAuthentication no
	Banner {{.Dir}}/banner-no-account
{{end}}`))

// missingAccounts lists, for a Match User line, the users in byUser that
// have no account on this host when the emulator runs as root (not root,
// the config refuses every other user anyway). Names that would be
// patterns to sshd are left out: they wait for their keys as before.
func missingAccounts(byUser map[string][]ssh.PublicKey) string {
	if os.Geteuid() != 0 {
		return ""
	}
	var missing []string
	for name := range byUser {
		if strings.ContainsAny(name, "*?!,\"'#") || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			continue
		}
		if _, err := user.Lookup(name); err != nil {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	return strings.Join(missing, ",")
}

// Start implements nodeSSHD: it writes the config, checks it with sshd -t
// and accepts connections.
func (d *opensshSSHD) Start() error {
	d.life.Lock()
	defer d.life.Unlock()
	d.mu.Lock()
	running := d.ln != nil
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
	d.port = ln.Addr().(*net.TCPAddr).Port
	cfgPath, err := d.writeConfig()
	if err == nil {
		var out []byte
		if out, err = exec.Command(SSHDPath, "-t", "-f", cfgPath).CombinedOutput(); err != nil {
			err = fmt.Errorf("emulator sshd: %s -t: %w: %s", SSHDPath, err, bytes.TrimSpace(out))
		}
	}
	if err != nil {
		ln.Close()
		return err
	}
	d.mu.Lock()
	d.ln = ln
	d.mu.Unlock()
	d.served.Add(1)
	go d.serve(ln, cfgPath)
	return nil
}

func (d *opensshSSHD) serve(ln net.Listener, cfgPath string) {
	defer d.served.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		d.served.Add(1)
		go d.session(c.(*net.TCPConn), cfgPath)
	}
}

// session runs sshd -i on the connection until it ends.
func (d *opensshSSHD) session(c *net.TCPConn, cfgPath string) {
	defer d.served.Done()
	f, err := c.File() // a copy of the socket for sshd's stdin and stdout
	c.Close()
	if err != nil {
		d.logf("emulator sshd: %v", err)
		return
	}
	cmd := exec.Command(SSHDPath, "-i", "-e", "-f", cfgPath)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, d.stderr
	d.mu.Lock()
	if d.ln == nil { // stopped meanwhile
		d.mu.Unlock()
		f.Close()
		return
	}
	err = cmd.Start()
	if err == nil {
		d.sessions[cmd.Process.Pid] = struct{}{}
	}
	d.mu.Unlock()
	f.Close()
	if err != nil {
		d.logf("emulator sshd: run %s: %v", SSHDPath, err)
		return
	}
	cmd.Wait()
	d.mu.Lock()
	delete(d.sessions, cmd.Process.Pid)
	d.mu.Unlock()
}

// writeConfig writes the sshd_config, with its refusal banners. It renames
// it into place, since a login may be reading it.
func (d *opensshSSHD) writeConfig() (string, error) {
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
	if d.missing != "" {
		banner := fmt.Sprintf("gce-emulator: no account %s on the emulator's host: a real guest agent creates it, gce-emulator does not (create it, or log in as an existing user)\n", d.missing)
		if err := os.WriteFile(filepath.Join(d.dir, "banner-no-account"), []byte(banner), 0o644); err != nil {
			return "", fmt.Errorf("emulator sshd: %w", err)
		}
	}
	var hostKeys []string
	for _, k := range d.keys {
		hostKeys = append(hostKeys, hostKeyPath(d.dir, k))
	}
	var cfg bytes.Buffer
	if err := sshdConfig.Execute(&cfg, map[string]any{"HostKeys": hostKeys, "Dir": d.dir,
		"OnlyUser": onlyUser, "Missing": d.missing}); err != nil {
		return "", fmt.Errorf("emulator sshd: %w", err)
	}
	cfgPath := filepath.Join(d.dir, "sshd_config")
	if err := os.WriteFile(cfgPath+".tmp", cfg.Bytes(), 0o600); err != nil {
		return "", fmt.Errorf("emulator sshd: %w", err)
	}
	if err := os.Rename(cfgPath+".tmp", cfgPath); err != nil {
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

// Stop implements nodeSSHD. It ends open sessions too, as a reboot would,
// so that no process is left behind.
func (d *opensshSSHD) Stop() error {
	d.life.Lock()
	defer d.life.Unlock()
	d.mu.Lock()
	ln := d.ln
	d.ln = nil
	pids := slices.Collect(maps.Keys(d.sessions))
	d.mu.Unlock()
	if ln == nil {
		return nil
	}
	ln.Close()
	for _, pid := range pids {
		killTree(pid)
	}
	d.served.Wait()
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
