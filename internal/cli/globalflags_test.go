//go:build unix

package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/testio"
	"github.com/gkessh/gkessh/keys"
)

// TestGlobalFlagsEveryPosition is generated from the command definitions:
// for every command and every name of every global flag, the flag typed
// before the command and typed after its arguments has the same effect,
// seen where it lands (the API path the emulator is asked for, the token
// it is shown, the endpoint reached, the key line written, the files, the
// verbose lines), and running without it does not show that effect. A
// command given a global flag it does not honour (globalsOf) refuses it in
// both places with a usage error naming the command, before any API call
// and without changing anything. A new command needs a driver below (the
// test fails until it has one); a new global flag needs a probe.
func TestGlobalFlagsEveryPosition(t *testing.T) {
	if testing.Short() {
		t.Skip("runs gkessh about 350 times (a minute of CPU); make test runs it")
	}
	stdio := Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}
	app := newApp(newDeps(stdio), stdio)
	// Aliases are spellings of the same flag (TestHoistFlags reads them).
	var names []string
	for _, f := range globalFlags() {
		names = append(names, f.Names()[0])
		if probes[f.Names()[0]].seen == nil {
			t.Errorf("global flag --%s has no probe: add one to probes", f.Names()[0])
		}
	}
	var paths []string
	var walk func(prefix string, cmds []*ucli.Command)
	walk = func(prefix string, cmds []*ucli.Command) {
		for _, c := range cmds {
			paths = append(paths, prefix+" "+c.Name)
			walk(prefix+" "+c.Name, c.Subcommands)
		}
	}
	paths = append(paths, "gkessh")
	walk("gkessh", app.Commands)
	for _, path := range paths {
		t.Run(strings.TrimPrefix(path, "gkessh "), func(t *testing.T) {
			t.Parallel()
			cmd := commandAt(app, path)
			if cmd != nil && len(cmd.Subcommands) > 0 {
				// A flag given to it goes to the subcommand, tested on its own;
				// alone it shows its help.
				return
			}
			drv, ok := drivers[path]
			if !ok {
				drv = driver{args: func(*probeEnv) []string { return strings.Fields(path)[1:] }}
				if len(globalsOf[path]) > 0 {
					t.Fatalf("no driver for %q, which honours %q: add one to drivers", path, globalsOf[path])
				}
			}
			var once sync.Once
			var without observation
			var refusals *probeEnv // one for every refused flag: nothing may change it
			baseline := func(t *testing.T, p flagProbe) observation {
				if p.env != nil || p.setup != nil {
					return runProbe(t, drv, p, nil) // the probe's own setting
				}
				once.Do(func() { without = runProbe(t, drv, p, nil) })
				return without
			}
			for _, name := range names {
				global := globalName[name]
				p := probes[global]
				if !honours(path, global) {
					if refusals == nil {
						refusals = newProbeEnv(t)
					}
					t.Run(name, func(t *testing.T) {
						for _, before := range []bool{true, false} {
							o := runProbeIn(t, refusals, drv, p, &typed{name: name, before: before})
							want := fmt.Sprintf("%s does not take --%s", strings.TrimPrefix(path, "gkessh "), global)
							if o.code != exitUsage || !strings.Contains(o.stderr, want) || len(o.requests) > 0 || o.changed() {
								t.Errorf("%s (before the command: %v): exit %d, %d API requests, changed %v; want exit 2 and %q:\n%s",
									o.args, before, o.code, len(o.requests), o.changed(), want, o.stderr)
							}
						}
					})
					continue
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					base := baseline(t, p)
					if err := p.seen(base, base); err == nil {
						t.Fatalf("%s: the effect of --%s shows without it:\n%s", base.args, name, base)
					}
					var codes []int
					for _, before := range []bool{true, false} {
						o := runProbe(t, drv, p, &typed{name: name, before: before})
						codes = append(codes, o.code)
						if err := p.seen(o, base); err != nil {
							t.Errorf("%s: no effect of --%s: %v\n%s\nwithout it:\n%s", o.args, name, err, o, base)
						}
					}
					if codes[0] != codes[1] {
						t.Errorf("--%s before the command exits %d, after it %d", name, codes[0], codes[1])
					}
				})
			}
		})
	}
}

// typed is where the flag under test goes: right after gkessh, or at the
// end of the command's flags and arguments (before "--").
type typed struct {
	name   string
	before bool
}

// driver runs one command against a probeEnv.
type driver struct {
	// args is the command line, without gkessh.
	args func(pe *probeEnv) []string
	// setup prepares the emulator and the home before the run.
	setup func(t *testing.T, pe *probeEnv)
	// interact, when set, talks to the running command (stdout is its
	// standard output) and returns when it may be stopped.
	interact func(t *testing.T, stdout *bufio.Reader)
}

// drivers run each command that honours global flags, to one of its
// effects: node A is the emulator's first node, in us-west1-a.
var drivers = map[string]driver{
	"gkessh": {args: func(pe *probeEnv) []string { return []string{pe.nodeA, "--", "true"} }},
	"gkessh proxy": {args: func(pe *probeEnv) []string { return []string{"proxy", pe.nodeA, "22"} },
		interact: func(t *testing.T, stdout *bufio.Reader) {
			io.ReadFull(stdout, make([]byte, 4)) // the node's banner, or nothing when the proxy failed
		}},
	"gkessh tunnel": {args: func(pe *probeEnv) []string { return []string{"tunnel", pe.nodeA, "22"} },
		interact: func(t *testing.T, stdout *bufio.Reader) {
			line, err := stdout.ReadString('\n')
			if err != nil {
				return // it failed, as it may under a probe
			}
			addr := strings.TrimSuffix(strings.Fields(line)[2], ",")
			c, err := net.DialTimeout("tcp", addr, 30*time.Second)
			if err != nil {
				t.Errorf("tunnel %s: %v", addr, err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			io.ReadFull(c, make([]byte, 4)) // the banner, or nothing when the relay refuses
		}},
	"gkessh keys ensure": {args: func(pe *probeEnv) []string { return []string{"keys", "ensure", pe.nodeA} }},
	"gkessh keys list":   {args: func(pe *probeEnv) []string { return []string{"keys", "list", pe.nodeA} }},
	"gkessh keys remove": {args: func(pe *probeEnv) []string { return []string{"keys", "remove", pe.nodeA} }, setup: withKeyLines(false)},
	"gkessh keys prune":  {args: func(pe *probeEnv) []string { return []string{"keys", "prune", pe.nodeA} }, setup: withKeyLines(true)},
	"gkessh config-ssh":  {args: func(*probeEnv) []string { return []string{"config-ssh"} }},
	"gkessh inventory":   {args: func(*probeEnv) []string { return []string{"inventory", "--list"} }},
	"gkessh doctor":      {args: func(pe *probeEnv) []string { return []string{"doctor", pe.nodeA} }, setup: withKeyLines(false)},
	"gkessh audit":       {args: func(pe *probeEnv) []string { return []string{"audit", pe.nodeA} }},
	"gkessh run":         {args: func(pe *probeEnv) []string { return []string{"run", pe.nodeA, "--", "true"} }},
	"gkessh cp":          {args: copyArgs("cp"), setup: copySource},
	"gkessh scp":         {args: copyArgs("scp"), setup: copySource},
}

// copyArgs copies the file copySource writes to node A, which is this
// machine: to the same home.
func copyArgs(cmd string) func(pe *probeEnv) []string {
	return func(pe *probeEnv) []string {
		return []string{cmd, filepath.Join(pe.home, "src"), pe.nodeA + ":" + filepath.Join(pe.home, "copied")}
	}
}

func copySource(t *testing.T, pe *probeEnv) {
	if err := os.WriteFile(filepath.Join(pe.home, "src"), []byte("copied\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// withKeyLines makes the user's key and puts lines for it, of the local
// user (tester) and of user flagged, in project metadata and node A's:
// expired ones when expired.
func withKeyLines(expired bool) func(t *testing.T, pe *probeEnv) {
	return func(t *testing.T, pe *probeEnv) {
		kp, err := keys.LoadOrCreate(filepath.Join(pe.home, ".ssh", "google_compute_engine"))
		if err != nil {
			t.Fatal(err)
		}
		kp.Close()
		pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(kp.Public)))
		expiry := time.Now().Add(time.Hour)
		if expired {
			expiry = time.Now().Add(-time.Hour)
		}
		var lines []string
		for _, u := range []string{"tester", "flagged"} {
			lines = append(lines, fmt.Sprintf(`%s:%s google-ssh {"userName":"%s","expireOn":"%s"}`, u, pub, u, expiry.UTC().Format("2006-01-02T15:04:05-0700")))
		}
		v := strings.Join(lines, "\n")
		if err := pe.srv.SetProjectMetadata(map[string]*string{"ssh-keys": &v}); err != nil {
			t.Fatal(err)
		}
		if err := pe.srv.SetInstanceMetadata(pe.nodeA, map[string]*string{"ssh-keys": &v}); err != nil {
			t.Fatal(err)
		}
	}
}

// flagProbe gives a global flag a value and says whether its effect shows.
type flagProbe struct {
	// value is the flag's value, "" for a boolean.
	value func(pe *probeEnv, path string) string
	// env is set for runs with and without the flag.
	env func(pe *probeEnv) map[string]string
	// setup prepares what the flag needs, before runs with and without it.
	setup func(t *testing.T, pe *probeEnv)
	// seen returns nil when with shows the flag's effect; without is the
	// same command's run without the flag.
	seen func(with, without observation) error
}

var expireOn = regexp.MustCompile(`"expireOn":"([^"]+)"`)

// expiring is nil when news has a key line expiring within slack of at.
func expiring(news string, at time.Time, slack time.Duration) error {
	var got []string
	for _, m := range expireOn.FindAllStringSubmatch(news, -1) {
		got = append(got, m[1])
		if t, err := time.Parse("2006-01-02T15:04:05-0700", m[1]); err == nil && t.Sub(at).Abs() <= slack {
			return nil
		}
	}
	return fmt.Errorf("no key line expiring at %v ±%v in what changed (expiries %q)", at.Format(time.RFC3339), slack, got)
}

// probes are the global flags' values and effects, by first name.
var probes = map[string]flagProbe{
	"project": {
		value: func(*probeEnv, string) string { return "other-project" },
		seen:  requested("/projects/other-project"),
	},
	"zone": {
		value: func(pe *probeEnv, _ string) string { return pe.zoneB },
		seen: func(with, without observation) error {
			z, a := with.pe.zoneB, with.pe.nodeA
			switch {
			case with.asked("/zones/"+z+"/") && !without.asked("/zones/"+z+"/"):
			case strings.Contains(with.output(), z) && !strings.Contains(without.output(), z):
			case strings.Contains(without.news(), a) && !strings.Contains(with.news(), a):
			default:
				return fmt.Errorf("zone %s not asked for or named, and node %s (of another zone) not left out", z, a)
			}
			return nil
		},
	},
	"access-token-file": {
		value: func(pe *probeEnv, _ string) string { return pe.token2File },
		seen: func(with, _ observation) error {
			for _, r := range with.requests {
				if strings.HasSuffix(r, " token2") {
					return nil
				}
			}
			return fmt.Errorf("no request carried the token of the file")
		},
	},
	"impersonate-service-account": {
		value: func(pe *probeEnv, _ string) string { return pe.serviceAccount },
		// Only here: the account's RSA key costs a noticeable 60 ms to make.
		setup: func(t *testing.T, pe *probeEnv) {
			grant := emulator.Grant{Projects: []string{pe.srv.ProjectName()}}
			if _, err := pe.srv.AddServiceAccount(emulator.Account{Email: pe.serviceAccount, Grant: grant, TokenCreators: []string{pe.account}}, pe.main); err != nil {
				t.Fatal(err)
			}
		},
		seen: requested(":generateAccessToken"),
	},
	"compute-endpoint": {
		value: func(pe *probeEnv, _ string) string { return pe.alt + "/compute/v1/" },
		seen:  requested("alt GET /compute/"),
	},
	"iap-endpoint": {
		value: func(pe *probeEnv, _ string) string { return "ws" + strings.TrimPrefix(pe.alt, "http") },
		seen:  requested("alt GET /v4/"),
	},
	"iap-tunnel-insecure-disable-websocket-cert-check": {
		// Only a relay whose certificate cannot be verified shows it.
		env: func(pe *probeEnv) map[string]string {
			return map[string]string{"GKESSH_IAP_ENDPOINT": "wss" + strings.TrimPrefix(pe.tls, "https")}
		},
		seen: requested("tls GET /v4/"),
	},
	"verbose":   {seen: moreVerbose},
	"verbosity": {value: func(*probeEnv, string) string { return "debug" }, seen: moreVerbose},
	"dry-run": {seen: func(with, without observation) error {
		if with.changed() || !without.changed() {
			return fmt.Errorf("changed with it: %v, without it: %v", with.changed(), without.changed())
		}
		return nil
	}},
	"user": {
		value: func(*probeEnv, string) string { return "flagged" },
		seen:  newly("flagged"),
	},
	"key-file": {
		value: func(pe *probeEnv, _ string) string { return filepath.Join(pe.home, "flagkey") },
		seen:  newly("flagkey"),
	},
	"force-key-file-overwrite": {
		// A private key file ssh cannot parse: without the flag the
		// command stops on it (config-ssh leaves it).
		setup: func(t *testing.T, pe *probeEnv) {
			dir := filepath.Join(pe.home, ".ssh")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "google_compute_engine"), []byte("not a key\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		seen: func(with, without observation) error {
			const replaced = "F .ssh/google_compute_engine\n"
			if !strings.Contains(with.filesDiff+"\n", replaced) || strings.Contains(without.filesDiff+"\n", replaced) {
				return fmt.Errorf("the broken key file replaced with it: %v, without it: %v",
					strings.Contains(with.filesDiff+"\n", replaced), strings.Contains(without.filesDiff+"\n", replaced))
			}
			return nil
		},
	},
	"scope": {
		// keys remove and prune with a NODE work on its metadata already.
		value: func(_ *probeEnv, path string) string {
			if path == "gkessh keys remove" || path == "gkessh keys prune" {
				return keys.ScopeProject
			}
			return keys.ScopeInstance
		},
		seen: func(with, without observation) error {
			for _, scope := range []string{"S " + keys.ScopeProject + " ", "S " + keys.ScopeInstance + " "} {
				if strings.Contains(with.news(), scope) && !strings.Contains(without.news(), scope) {
					return nil
				}
			}
			return fmt.Errorf("no change in the other scope's metadata")
		},
	},
	"key-expire-after": {
		value: func(*probeEnv, string) string { return "1h" },
		seen: func(with, _ observation) error {
			return expiring(with.news(), with.start.Add(time.Hour), 5*time.Minute)
		},
	},
	"ssh-key-expiration": {
		value: func(pe *probeEnv, _ string) string { return pe.expiration.Format(time.RFC3339) },
		seen: func(with, _ observation) error {
			return expiring(with.news(), with.pe.expiration, 5*time.Minute)
		},
	},
	"strict-host-key-checking": {
		value: func(*probeEnv, string) string { return "no" },
		seen: func(with, without observation) error {
			// What config-ssh and inventory write for ssh; a native login
			// does not read the keys the guest published.
			const published = "/getGuestAttributes?"
			switch {
			case strings.Contains(with.news(), "StrictHostKeyChecking no") || strings.Contains(with.news(), "StrictHostKeyChecking=no"):
			case without.asked(published) && !with.asked(published):
			default:
				return fmt.Errorf("no StrictHostKeyChecking no written, and the published host keys read as without it")
			}
			return nil
		},
	},
}

// requested is a probe's seen: a request the emulator got, as "TAG METHOD
// PATH?QUERY TOKEN", contains s, and none without the flag.
func requested(s string) func(with, without observation) error {
	return func(with, without observation) error {
		if !with.asked(s) || without.asked(s) {
			return fmt.Errorf("%q requested with it: %v, without it: %v", s, with.asked(s), without.asked(s))
		}
		return nil
	}
}

// newly is a probe's seen: s shows in the output or in what changed, and
// not without the flag.
func newly(s string) func(with, without observation) error {
	return func(with, without observation) error {
		if !strings.Contains(with.news(), s) || strings.Contains(without.news(), s) {
			return fmt.Errorf("%q with it: %v, without it: %v", s, strings.Contains(with.news(), s), strings.Contains(without.news(), s))
		}
		return nil
	}
}

func moreVerbose(with, without observation) error {
	count := func(o observation) int { return strings.Count("\n"+o.stderr, "\ngkessh: ") }
	if count(with) <= count(without) {
		return fmt.Errorf("%d lines of gkessh's on stderr with it, %d without", count(with), count(without))
	}
	return nil
}

// probeEnv is an emulator served three ways (plain HTTP, the same on
// another port, and HTTPS with a certificate nobody trusts), recording
// every request, and a fresh home.
type probeEnv struct {
	srv            *emulator.Server
	main, alt, tls string // base URLs
	home           string
	token2File     string // a file with another valid token
	serviceAccount string // one the emulator's token may impersonate
	account        string // the emulator token's principal, the gcloud account
	nodeA, zoneB   string
	expiration     time.Time // --ssh-key-expiration's value
	tokenNames     map[string]string

	mu        sync.Mutex
	recording bool
	requests  []string
}

func newProbeEnv(t *testing.T) *probeEnv {
	t.Helper()
	srv, err := emulator.New(emulator.Config{Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	pe := &probeEnv{srv: srv, home: t.TempDir(), expiration: time.Now().Add(3 * time.Hour).Truncate(time.Minute)}
	pe.nodeA = srv.Nodes()[0]
	pe.zoneB = srv.Node(srv.Nodes()[1]).Zone
	serve := func(tag string, tls bool) string {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			pe.record(tag, r)
			srv.ServeHTTP(w, r)
		})
		s := httptest.NewUnstartedServer(h)
		s.Config.ErrorLog = log.New(io.Discard, "", 0) // refused TLS handshakes are the point
		if tls {
			s.StartTLS()
		} else {
			s.Start()
		}
		t.Cleanup(s.Close)
		return s.URL
	}
	pe.main, pe.alt, pe.tls = serve("main", false), serve("alt", false), serve("tls", true)
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close emulator: %v", err)
		}
	})
	srv.AddToken("token2-"+srv.Token(), srv.ProjectName())
	pe.tokenNames = map[string]string{srv.Token(): "token", "token2-" + srv.Token(): "token2"}
	pe.token2File = filepath.Join(pe.home, "token2")
	for name, tok := range map[string]string{"token": srv.Token(), "token2": "token2-" + srv.Token()} {
		if err := os.WriteFile(filepath.Join(pe.home, name), []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pe.account = "owner@" + srv.ProjectName() + ".example"
	pe.serviceAccount = "deployer@" + srv.ProjectName() + ".iam.gserviceaccount.com"
	return pe
}

// record notes a request while recording, naming its bearer token.
func (pe *probeEnv) record(tag string, r *http.Request) {
	pe.mu.Lock()
	defer pe.mu.Unlock()
	if !pe.recording {
		return
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	name := pe.tokenNames[tok]
	if name == "" && tok != "" {
		name = "other-token"
	}
	pe.requests = append(pe.requests, strings.TrimSpace(fmt.Sprintf("%s %s %s %s", tag, r.Method, r.URL.RequestURI(), name)))
}

// environ points gkessh at the emulator and the home, as a user's
// `eval $(gce-emulator)` would.
func (pe *probeEnv) environ() map[string]string {
	return map[string]string{
		"HOME":                            pe.home,
		"XDG_CACHE_HOME":                  filepath.Join(pe.home, ".cache"),
		"XDG_CONFIG_HOME":                 filepath.Join(pe.home, ".config"),
		"CLOUDSDK_CONFIG":                 filepath.Join(pe.home, ".config", "gcloud"),
		"USER":                            "tester",
		"LOGNAME":                         "tester",
		"SSH_AUTH_SOCK":                   "",
		"GKESSH_COMPUTE_ENDPOINT":         pe.main + "/compute/v1/",
		"GKESSH_IAP_ENDPOINT":             "ws" + strings.TrimPrefix(pe.main, "http"),
		"GKESSH_ACCESS_TOKEN_FILE":        filepath.Join(pe.home, "token"),
		"CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": "",
		"CLOUDSDK_CORE_PROJECT":           pe.srv.ProjectName(),
		"CLOUDSDK_CORE_ACCOUNT":           pe.account,
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS": pe.main + "/",
		// The emulator serves every API; gcloud's variables say so.
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_OSLOGIN":              pe.main + "/",
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER": pe.main + "/",
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM":                  pe.main + "/",
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_IAP":                  pe.main + "/",
		"CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT":            "",
		"GOOGLE_APPLICATION_CREDENTIALS":                       "",
	}
}

// deps are the world of a gkessh run in pe with env: the files of its
// home, only the variables of env.
func (pe *probeEnv) deps(stdio Stdio, env map[string]string) *deps {
	d := newDeps(stdio)
	lookup := func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
	in := func(rel ...string) func() (string, error) {
		p := filepath.Join(append([]string{pe.home}, rel...)...)
		return func() (string, error) { return p, nil }
	}
	d.env = lookup
	d.stateDir = in(".cache", "gkessh")
	d.keyPath = in(".ssh", "google_compute_engine")
	d.knownHosts = in(".ssh", "google_compute_known_hosts")
	d.sshConfig = in(".ssh", "config")
	d.localUser = func() (string, error) { return env["USER"], nil }
	d.executable = in("bin", "gkessh")
	return d
}

// state is the emulator's metadata, a line per key line ("S project
// ssh-keys: LINE", "S instance NODE ssh-keys: LINE") or other item.
func (pe *probeEnv) state(t *testing.T) string {
	t.Helper()
	get := func(path string) map[string]any { return pe.get(t, "/compute/v1/projects/"+pe.srv.ProjectName()+path) }
	var lines []string
	items := func(prefix string, md any) {
		m, _ := md.(map[string]any)
		list, _ := m["items"].([]any)
		for _, it := range list {
			kv, _ := it.(map[string]any)
			v, _ := kv["value"].(string)
			for _, l := range strings.Split(v, "\n") {
				lines = append(lines, fmt.Sprintf("S %s%v: %s", prefix, kv["key"], l))
			}
		}
	}
	items(keys.ScopeProject+" ", get("")["commonInstanceMetadata"])
	for _, n := range pe.srv.Nodes() {
		items(keys.ScopeInstance+" "+n+" ", get("/zones/" + pe.srv.Node(n).Zone + "/instances/" + n)["metadata"])
	}
	profile, _ := pe.get(t, "/v1/users/"+pe.account+"/loginProfile")["sshPublicKeys"].(map[string]any)
	for fp, k := range profile {
		b, _ := json.Marshal(k)
		lines = append(lines, fmt.Sprintf("S oslogin %s: %s", fp, b))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// get is the emulator's answer to GET path, unrecorded.
func (pe *probeEnv) get(t *testing.T, path string) map[string]any {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+pe.srv.Token())
	w := httptest.NewRecorder()
	pe.srv.ServeHTTP(w, req)
	var v map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("emulator GET %s: %v", path, err)
	}
	return v
}

// files maps each file under home to its content.
func (pe *probeEnv) files(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(pe.home, func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(pe.home, path)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// observation is what one run of gkessh did.
type observation struct {
	pe           *probeEnv
	args         []string
	start        time.Time
	code         int
	stdout       string
	stderr       string
	requests     []string
	stateDiff    string
	filesDiff    string
	stateChanged bool
}

func (o observation) changed() bool { return o.stateChanged || o.filesDiff != "" }

// output is what the run printed.
func (o observation) output() string { return o.stdout + "\n" + o.stderr }

// news is what the run printed and every line it changed.
func (o observation) news() string { return o.output() + "\n" + o.stateDiff + "\n" + o.filesDiff }

func (o observation) asked(s string) bool {
	return slices.ContainsFunc(o.requests, func(r string) bool { return strings.Contains(r, s) })
}

func (o observation) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s\nrequests:\n  %s\nchanged:\n%s\n%s",
		o.code, o.stdout, o.stderr, strings.Join(o.requests, "\n  "), o.stateDiff, o.filesDiff)
}

// changedLines lists the lines of after not in before ("+ ") and of before not
// in after ("- "), each with prefix.
func changedLines(prefix, before, after string) string {
	var out []string
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, "+ "+prefix+l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			out = append(out, "- "+prefix+l)
		}
	}
	return strings.Join(out, "\n")
}

// runProbe runs drv in a fresh probeEnv, with the flag of p where tp says
// (none when tp is nil), and observes it.
func runProbe(t *testing.T, drv driver, p flagProbe, tp *typed) observation {
	t.Helper()
	pe := newProbeEnv(t)
	if drv.setup != nil {
		drv.setup(t, pe)
	}
	return runProbeIn(t, pe, drv, p, tp)
}

// runProbeIn is runProbe in pe, as it is.
func runProbeIn(t *testing.T, pe *probeEnv, drv driver, p flagProbe, tp *typed) observation {
	t.Helper()
	args := drv.args(pe)
	if tp != nil {
		flag := []string{"--" + tp.name}
		if len(tp.name) == 1 {
			flag[0] = "-" + tp.name
		}
		if p.value != nil {
			flag = append(flag, p.value(pe, "gkessh "+strings.Join(commandWords(args), " ")))
		}
		if tp.before {
			args = slices.Concat(flag, args)
		} else if i := slices.Index(args, "--"); i >= 0 {
			args = slices.Concat(args[:i], flag, args[i:])
		} else {
			args = slices.Concat(args, flag)
		}
	}
	if p.setup != nil {
		p.setup(t, pe)
	}
	env := pe.environ()
	if p.env != nil {
		maps.Copy(env, p.env(pe))
	}
	stateBefore, filesBefore := pe.state(t), pe.files(t)
	pe.mu.Lock()
	pe.recording, pe.requests = true, nil
	pe.mu.Unlock()
	o := observation{pe: pe, args: append([]string{"gkessh"}, args...), start: time.Now()}
	o.code, o.stdout, o.stderr = execGkessh(t, pe, env, args, drv.interact)
	pe.mu.Lock()
	pe.recording = false
	o.requests = slices.Clone(pe.requests)
	pe.mu.Unlock()
	stateAfter, filesAfter := pe.state(t), pe.files(t)
	o.stateChanged = stateAfter != stateBefore
	o.stateDiff = changedLines("", stateBefore, stateAfter)
	var diffs []string
	var names []string
	for f := range filesAfter {
		names = append(names, f)
	}
	for f := range filesBefore {
		if _, ok := filesAfter[f]; !ok {
			names = append(names, f)
		}
	}
	sort.Strings(names)
	for _, f := range names {
		if filesBefore[f] != filesAfter[f] {
			diffs = append(diffs, "F "+f, changedLines("F "+f+": ", filesBefore[f], filesAfter[f]))
		}
	}
	o.filesDiff = strings.Join(diffs, "\n")
	return o
}

// commandWords are the command path at the start of args.
func commandWords(args []string) []string {
	stdio := Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}
	cmds := newApp(newDeps(stdio), stdio).Commands
	var words []string
	for _, a := range args {
		c := findCommand(cmds, a)
		if c == nil {
			break
		}
		words = append(words, a)
		cmds = c.Subcommands
	}
	return words
}

// execGkessh runs gkessh in this process with args, in pe with env;
// interact, when set, talks to it through its stdout before it is
// interrupted.
func execGkessh(t *testing.T, pe *probeEnv, env map[string]string, args []string, interact func(*testing.T, *bufio.Reader)) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb testio.Buffer
	stdio := Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}
	argv := append([]string{"gkessh"}, args...)
	if interact == nil {
		code = mainWith(ctx, argv, stdio, pe.deps(stdio, env))
		return code, out.String(), errb.String()
	}
	pr, pw := io.Pipe()
	stdio.Out = io.MultiWriter(pw, &out)
	done := make(chan int, 1)
	go func() {
		defer pw.Close()
		done <- mainWith(ctx, argv, stdio, pe.deps(stdio, env))
	}()
	interact(t, bufio.NewReader(pr))
	cancel()
	go io.Copy(io.Discard, pr) // until gkessh has stopped writing
	code = <-done
	pr.Close()
	return code, out.String(), errb.String()
}

// TestDryRunOSLogin: --dry-run, before the command or after it, leaves the
// OS Login profile as it is for every command that would change it (a
// login and keys ensure import the key, keys remove takes it out), as
// every other part of the state (TestGlobalFlagsEveryPosition); without
// --dry-run each of them does change it.
func TestDryRunOSLogin(t *testing.T) {
	t.Parallel()
	osLogin := func(t *testing.T, pe *probeEnv) {
		enabled := "TRUE"
		if err := pe.srv.SetProjectMetadata(map[string]*string{"enable-oslogin": &enabled}); err != nil {
			t.Fatal(err)
		}
		if _, err := pe.srv.AddNode("plain-vm", "us-west1-a"); err != nil {
			t.Fatal(err)
		}
	}
	imported := func(t *testing.T, pe *probeEnv) {
		osLogin(t, pe)
		if code, _, stderr := execGkessh(t, pe, pe.environ(), []string{"keys", "ensure", "plain-vm"}, nil); code != 0 {
			t.Fatalf("keys ensure: exit %d: %s", code, stderr)
		}
	}
	for _, drv := range []driver{
		{args: func(*probeEnv) []string { return []string{"plain-vm", "--", "true"} }, setup: osLogin},
		{args: func(*probeEnv) []string { return []string{"keys", "ensure", "plain-vm"} }, setup: osLogin},
		{args: func(*probeEnv) []string { return []string{"keys", "remove", "plain-vm"} }, setup: imported},
	} {
		t.Run(strings.Join(drv.args(nil), " "), func(t *testing.T) {
			t.Parallel()
			p := probes["dry-run"]
			without := runProbe(t, drv, p, nil)
			if !strings.Contains(without.stateDiff, "S oslogin ") {
				t.Fatalf("%s: the OS Login profile did not change:\n%s", without.args, without)
			}
			for _, before := range []bool{true, false} {
				if o := runProbe(t, drv, p, &typed{name: "dry-run", before: before}); o.code != 0 || o.changed() {
					t.Errorf("%s: exit %d, changed:\n%s", o.args, o.code, o)
				}
			}
		})
	}
}
