//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/testbin"
	"github.com/gkessh/gkessh/internal/testcert"
)

func TestMain(m *testing.M) {
	if report := os.Getenv(usageVar); report != "" {
		// A benchmark started this binary as the parent of a command it
		// measures (measureUsage).
		os.Exit(runMeasured(report, os.Args[1:]))
	}
	if os.Getenv(testcert.ECPSignerVar) != "" {
		// gkessh started this binary as its ECP signer (TestCertificateAccess).
		os.Exit(testcert.ServeECPSigner(os.Args[1]))
	}
	flag.Parse()
	if testing.Short() {
		// Built binaries, real OpenSSH and Ansible: not the inner loop.
		fmt.Println("internal/e2e: end-to-end tests skipped under -short")
		os.Exit(0)
	}
	testbin.Main(m)
}

// ansiblePython is the Python that runs Ansible itself (its scripts'
// #! line), for the nodes' modules too: one that surely works, and not
// whatever python3 PATH finds first (a pyenv shim here cost 10 s a test).
func ansiblePython() string {
	if p, err := exec.LookPath("ansible-playbook"); err == nil {
		if f, err := os.Open(p); err == nil {
			line, _ := bufio.NewReader(f).ReadString('\n')
			f.Close()
			if rest, ok := strings.CutPrefix(line, "#!"); ok {
				if f := strings.Fields(rest); len(f) == 1 && filepath.IsAbs(f[0]) {
					return f[0]
				}
			}
		}
	}
	p, _ := exec.LookPath("python3")
	return p
}

// need skips the test when a program it runs is missing (.ci/run installs
// them all, so CI never skips).
func need(t testing.TB, progs ...string) {
	t.Helper()
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed", p)
		}
	}
}

// world is a running gce-emulator process and a fresh HOME whose
// environment points gkessh at it.
type world struct {
	t    testing.TB
	home string
	env  []string
	base string // emulator's http://host:port
	// stateDir is the emulator's temporary directory (its token file's),
	// which it must remove when it stops.
	stateDir string
	envFile  string // the emulator's env file
	pid      int    // the emulator's process id
	secret   string // the control API's secret, from the env file
	// stop stops the emulator (SIGTERM) and checks it went cleanly; the
	// test's cleanup calls it too.
	stop func()
}

// startEmulator runs gce-emulator with args and waits for its env file.
func startEmulator(t testing.TB, args ...string) *world {
	t.Helper()
	need(t, "sshd")
	home := t.TempDir()
	envFile := filepath.Join(home, "emulator.env")
	var log bytes.Buffer
	binDir := testbin.Dir(t, "gkessh", "gce-emulator")
	cmd := exec.Command(filepath.Join(binDir, "gce-emulator"), append([]string{"--env-file", envFile}, args...)...)
	cmd.Stdout, cmd.Stderr = io.Discard, &log
	// The nodes' sessions and sftp start in the emulator's home directory:
	// one of the test's, so that what a test copies or writes there lands
	// in no real home.
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, home: home, envFile: envFile, pid: cmd.Process.Pid}
	// A directory named with --state-dir is the user's, and stays.
	userDir := slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--state-dir") })
	var once sync.Once
	w.stop = func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("gce-emulator exited with %v; log:\n%s", err, log.String())
				}
				if !userDir && fileExists(w.stateDir) {
					t.Errorf("gce-emulator left its state directory %s behind", w.stateDir)
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Errorf("gce-emulator did not stop on SIGTERM")
			}
		})
	}
	t.Cleanup(w.stop)
	var vars []string
	for deadline := time.Now().Add(20 * time.Second); ; {
		b, err := os.ReadFile(envFile)
		if err == nil {
			vars = parseExports(string(b))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gce-emulator wrote no env file; log:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.env = append(os.Environ(),
		"HOME="+home,
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"SSH_AUTH_SOCK=",
		"ANSIBLE_PYTHON_INTERPRETER="+ansiblePython(),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(home, ".ansible", "tmp"),
	)
	w.env = append(w.env, vars...)
	for _, v := range vars {
		if rest, ok := strings.CutPrefix(v, "GKESSH_COMPUTE_ENDPOINT="); ok {
			w.base = strings.TrimSuffix(rest, "/compute/v1/")
		}
		if rest, ok := strings.CutPrefix(v, "GKESSH_ACCESS_TOKEN_FILE="); ok {
			w.stateDir = filepath.Dir(rest)
		}
		if rest, ok := strings.CutPrefix(v, "GCE_EMULATOR_CONTROL_SECRET="); ok {
			w.secret = rest
		}
	}
	if w.base == "" || w.stateDir == "" || w.secret == "" {
		t.Fatalf("gce-emulator's env file lacks the endpoint, token file or control secret: %q", vars)
	}
	return w
}

// parseExports reads the "export K=V K=V" line gce-emulator prints.
func parseExports(s string) []string {
	var vars []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		for _, f := range strings.Fields(strings.TrimPrefix(sc.Text(), "export ")) {
			if strings.Contains(f, "=") {
				vars = append(vars, f)
			}
		}
	}
	return vars
}

// command returns prog (one of the built commands, or from PATH) set up to run in w.
func (w *world) command(prog string, args ...string) *exec.Cmd {
	if p := filepath.Join(testbin.Dir(w.t, "gkessh", "gce-emulator"), prog); fileExists(p) {
		prog = p // exec looks programs up in this process's PATH, not cmd.Env's
	}
	cmd := exec.Command(prog, args...)
	cmd.Env = w.env
	cmd.Dir = w.home
	return cmd
}

// startPiped starts cmd with pipes to its stdin and from its stdout, and
// its stderr kept.
func startPiped(t testing.TB, cmd *exec.Cmd) (io.WriteCloser, io.ReadCloser, *strings.Builder) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(strings.Builder)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return stdin, stdout, stderr
}

// run runs prog and returns its combined output, failing the test on a
// non-zero exit.
func (w *world) run(prog string, args ...string) string {
	w.t.Helper()
	out, err := w.command(prog, args...).CombinedOutput()
	if err != nil {
		w.t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// output runs prog and returns its stdout, failing the test on a non-zero
// exit.
func (w *world) output(prog string, args ...string) string {
	w.t.Helper()
	var stderr bytes.Buffer
	cmd := w.command(prog, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		w.t.Fatalf("%s %s: %v\n%s%s", prog, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// control calls the emulator's control API; out may be nil.
func (w *world) control(method, path string, body, out any) {
	w.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			w.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, w.base+path, rd)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+w.secret)
	resp, err := w.httpClient().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		w.t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			w.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// httpClient is a client for the emulator, trusting its CA under --tls.
func (w *world) httpClient() *http.Client {
	ca := w.getenv("GCE_EMULATOR_CA_FILE")
	if ca == "" {
		return http.DefaultClient
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		w.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// getenv is the value of name in w's environment, "" when unset.
func (w *world) getenv(name string) string {
	for _, kv := range slices.Backward(w.env) {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

func (w *world) stats() emulator.Stats {
	var s emulator.Stats
	w.control("GET", "/control/stats", nil, &s)
	return s
}

// nodes describes the emulator's nodes.
func (w *world) nodes() []emulator.NodeInfo {
	var ns []emulator.NodeInfo
	w.control("GET", "/control/nodes", nil, &ns)
	return ns
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
