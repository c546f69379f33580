//go:build unix

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/keys"
)

// messyKeys is a project ssh-keys value that every write must keep byte for
// byte: someone else's key, junk, CRLF, a blank line, a malformed expiry.
func messyKeys(t *testing.T) string {
	pub := testkey.Public(t)
	return strings.Join([]string{
		keys.FormatLine("bob", pub, "bob@laptop"),
		"not a key at all  ",
		keys.FormatLine("carol", pub, "") + "\r",
		"",
		`dave:ssh-rsa AAAA google-ssh {"userName":"dave","expireOn":"bad"}`,
	}, "\n")
}

// projectItems returns the project metadata items, and the fingerprint
// under "#fingerprint", read through the Compute API.
func (e *testEnv) projectItems() map[string]string {
	e.t.Helper()
	c, err := e.deps(Stdio{Err: io.Discard}).compute(context.Background(), e.options())
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := c.Project(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{"#fingerprint": p.CommonInstanceMetadata.Fingerprint}
	for _, it := range p.CommonInstanceMetadata.Items {
		out[it.Key] = *it.Value
	}
	return out
}

func (e *testEnv) seedProject(kv map[string]string) {
	e.t.Helper()
	attrs := map[string]*string{}
	for k, v := range kv {
		attrs[k] = new(v)
	}
	if err := e.srv.SetProjectMetadata(attrs); err != nil {
		e.t.Fatal(err)
	}
}

// TestKeysEnsureConcurrentProcesses: 32 gkessh processes, each with its
// own HOME and user, upsert into the same project metadata at once while
// the emulator injects 412 conflicts.
func TestKeysEnsureConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 32 processes")
	}
	bin := gkesshBinary(t)
	e := newTestEnv(t, emulator.Config{Nodes: 2})
	before := messyKeys(t)
	e.seedProject(map[string]string{"ssh-keys": before, "aaa-first": "x", "zzz-last": "y\n"})
	e.srv.SetFaults(emulator.Faults{MetadataConflicts: 16})

	const n = 32
	type result struct {
		out  []byte
		err  error
		home string
	}
	results := make([]result, n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		home := filepath.Join(t.TempDir(), "home")
		results[i].home = home
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, bin, "keys", "ensure", "--user", fmt.Sprintf("user%02d", i))
			cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
			results[i].out, results[i].err = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	items := e.projectItems()
	value := items["ssh-keys"]
	if !strings.HasPrefix(value, before+"\n") {
		t.Fatalf("pre-existing lines changed; value starts\n%.400q", value)
	}
	if items["aaa-first"] != "x" || items["zzz-last"] != "y\n" {
		t.Fatalf("other items changed: %q", items)
	}
	added := keys.ParseLines(strings.TrimPrefix(value, before+"\n"))
	if len(added) != n {
		t.Fatalf("%d lines added, want %d", len(added), n)
	}
	byUser := map[string]keys.Line{}
	for _, l := range added {
		byUser[l.User] = l
	}
	for i, r := range results {
		if r.err != nil {
			t.Errorf("process %d: %v\n%s", i, r.err, r.out)
			continue
		}
		pubBytes, err := os.ReadFile(filepath.Join(r.home, ".ssh", "google_compute_engine.pub"))
		if err != nil {
			t.Fatal(err)
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey(pubBytes)
		if err != nil {
			t.Fatal(err)
		}
		l, ok := byUser[fmt.Sprintf("user%02d", i)]
		if !ok || !l.Valid() || !keys.SameKey(l.Key, pub) || !l.Expiring() {
			t.Errorf("process %d: its key is not in metadata (line %q)", i, l.Raw)
		}
	}
	if f := e.srv.Faults().MetadataConflicts; f != 0 {
		t.Errorf("%d injected conflicts never hit", f)
	}
	t.Logf("%d metadata writes, %d API calls", e.srv.Stats().MetadataWrites, e.srv.Stats().APICalls)
}

func TestKeysEnsureWarmPathWritesNothing(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 2})
	node := e.srv.Nodes()[0]
	out, errOut, code := e.run("keys", "ensure", "--user", "nat", node)
	if code != 0 || !strings.Contains(errOut, "Generated SSH key") || !strings.Contains(out, "Added nat's key") {
		t.Fatalf("first ensure: exit %d\n%s%s", code, out, errOut)
	}
	before := e.srv.Stats()
	out, errOut, code = e.run("keys", "ensure", "--user", "nat", node)
	if code != 0 || !strings.Contains(out, "already in project metadata") {
		t.Fatalf("second ensure: exit %d\n%s%s", code, out, errOut)
	}
	after := e.srv.Stats()
	if w := after.MetadataWrites - before.MetadataWrites; w != 0 {
		t.Fatalf("warm ensure made %d metadata writes", w)
	}
	// The node came from the zone cache: get instance + get project only.
	if calls := after.APICalls - before.APICalls; calls != 2 {
		t.Fatalf("warm ensure made %d API calls, want 2 (instance, project)", calls)
	}
}

// TestKeysEnsureSaysWhere: keys ensure for a node that ignores project
// keys says, without --verbose, that the key goes to the node's own
// metadata, and puts it there.
func TestKeysEnsureSaysWhere(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	if err := e.srv.SetInstanceMetadata(node, map[string]*string{"block-project-ssh-keys": ptrTo("TRUE")}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := e.run("keys", "ensure", "--user", "nat", node)
	if code != 0 || !strings.Contains(errOut, "gkessh: instance "+node+" ignores project-wide keys") || !strings.Contains(out, "to instance "+node+" metadata") {
		t.Fatalf("exit %d, want the instance's own metadata said on stderr:\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

func TestKeysBadInput(t *testing.T) {
	privPEM := testkey.PEM(t, testkey.Key(t))
	otherPub := testkey.Fixed(t, 0)
	tests := []struct {
		name     string
		args     []string
		priv     []byte // key file content; nil: none
		privMode os.FileMode
		pub      []byte
		project  map[string]string // seeded before the run
		weak     bool              // use a token with no rights on the project
		wantCode int
		wantErr  string
	}{
		{name: "group-readable key", priv: privPEM, privMode: 0o644, wantCode: 2, wantErr: "chmod 600"},
		{name: "mismatched pub", priv: privPEM, privMode: 0o600, pub: ssh.MarshalAuthorizedKey(otherPub), wantCode: 2, wantErr: "is not the public key of"},
		{name: "not a key", priv: []byte("hello\n"), privMode: 0o600, wantCode: 2, wantErr: "not a private key"},
		{name: "metadata at the size limit", project: map[string]string{"ssh-keys": strings.Repeat("x", keys.MaxValueBytes-20)}, wantCode: 1, wantErr: "over GCE's limit"},
		{name: "403 on the project", weak: true, wantCode: 1, wantErr: "permission denied"},
		{name: "bad scope", args: []string{"--scope", "zone"}, wantCode: 2, wantErr: "use project or instance"},
		{name: "instance scope without node", args: []string{"--scope", "instance"}, wantCode: 2, wantErr: "needs a NODE"},
		{name: "bad lifetime", args: []string{"--key-expire-after", "soon"}, wantCode: 2, wantErr: "--key-expire-after"},
		{name: "bad user", args: []string{"--user", "al ice"}, wantCode: 2, wantErr: "--user"},
		{name: "two nodes", args: []string{"a", "b"}, wantCode: 2, wantErr: "at most one NODE"},
		{name: "missing node", args: []string{"no-such-node"}, wantCode: 1, wantErr: "no instance named no-such-node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, emulator.Config{Nodes: 1})
			e.seedProject(map[string]string{"ssh-keys": messyKeys(t), "other": "v"})
			if tt.project != nil {
				e.seedProject(tt.project)
			}
			keyFile := filepath.Join(e.home, ".ssh", "google_compute_engine")
			if tt.priv != nil {
				if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(keyFile, tt.priv, tt.privMode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(keyFile, tt.privMode); err != nil { // umask may have cut it
					t.Fatal(err)
				}
			}
			if tt.pub != nil {
				if err := os.WriteFile(keyFile+".pub", tt.pub, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.weak {
				e.srv.AddToken("weak-token")
				tokenFile := filepath.Join(e.home, "weak")
				if err := os.WriteFile(tokenFile, []byte("weak-token"), 0o600); err != nil {
					t.Fatal(err)
				}
				t.Setenv("GKESSH_ACCESS_TOKEN_FILE", tokenFile)
			}
			before := e.srv.Stats().MetadataWrites
			itemsBefore := e.projectItems()
			// A later --user in tt.args wins over this one.
			out, errOut, code := e.run(append([]string{"keys", "ensure", "--user", "alice"}, tt.args...)...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tt.wantCode, tt.wantErr, out, errOut)
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
				t.Errorf("error is not short:\n%s", errOut)
			}
			if w := e.srv.Stats().MetadataWrites - before; w != 0 {
				t.Fatalf("%d metadata writes on bad input", w)
			}
			if after := e.projectItems(); fmt.Sprint(after) != fmt.Sprint(itemsBefore) {
				t.Fatal("project metadata changed")
			}
		})
	}
}

func TestKeysListAuditRemovePrune(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	node := e.srv.Nodes()[0]
	past := time.Now().Add(-time.Hour)
	pub := testkey.Fixed(t, 7)
	e.seedProject(map[string]string{"ssh-keys": strings.Join([]string{
		keys.FormatLine("perm", pub, ""),
		keys.FormatExpiringLine("old", pub, past),
		"junk",
	}, "\n")})
	// No --user: the local login name, which remove without --user uses too.
	local, err := keys.LocalUser()
	if err != nil {
		t.Fatal(err)
	}
	me, err := keys.RemoteUser(local, func() (string, error) { return "", nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := e.run("keys", "ensure", "--scope", "instance", node); code != 0 {
		t.Fatalf("ensure: %s", errOut)
	}

	out, errOut, code := e.run("keys", "list", "--audit", "--format", "json", node)
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errOut)
	}
	var listed []listedKey
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("list json: %v\n%s", err, out)
	}
	problems := map[string]string{}
	for _, k := range listed {
		problems[k.User+"@"+k.Scope] = strings.Join(k.Problems, "; ")
	}
	for who, want := range map[string]string{
		"perm@project": "never expires",
		"old@project":  "expired",
		"@project":     "the guest agent skips this line",
	} {
		if got, ok := problems[who]; !ok || !strings.Contains(got, want) {
			t.Errorf("%s: problems %q, want %q (listed %v)", who, got, want, problems)
		}
	}
	if p, ok := problems[me+"@instance"]; !ok || p != "" {
		t.Errorf("%s@instance: listed %v, problems %q; want listed, no problems", me, ok, p)
	}
	if !strings.Contains(problems["perm@project"], "sudo on every node") || !strings.Contains(problems["perm@project"], "same key also grants user old") {
		t.Errorf("perm@project: %q", problems["perm@project"])
	}
	text, notes, code := e.run("keys", "list", "--audit", node)
	if code != 0 || !strings.Contains(text, "SCOPE") || !strings.Contains(text, "\ninstance  ") || strings.Contains(text, "instance:") || strings.Contains(text, "AAAA") {
		t.Errorf("text list:\n%s", text)
	}
	if !strings.Contains(notes, "gkessh: 1 user gets sudo on every node") || !strings.Contains(notes, ": perm\n") {
		t.Errorf("audit summary on stderr: %q", notes)
	}

	// Prune: dry run changes nothing; then everyone's expired lines go.
	writes := e.srv.Stats().MetadataWrites
	out, _, code = e.run("keys", "prune", "--all-expired", "--dry-run")
	if code != 0 || !strings.Contains(out, "would remove") || e.srv.Stats().MetadataWrites != writes {
		t.Fatalf("prune --dry-run: exit %d\n%s", code, out)
	}
	if out, errOut, code = e.run("keys", "prune", "--all-expired"); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("prune: exit %d\n%s%s", code, out, errOut)
	}
	if v := e.projectItems()["ssh-keys"]; v != keys.FormatLine("perm", pub, "")+"\njunk" {
		t.Fatalf("after prune ssh-keys = %q", v)
	}
	// Remove my key from the node, then someone else's from the project.
	if out, errOut, code = e.run("keys", "remove", node); code != 0 || !strings.Contains(out, "removed from instance") {
		t.Fatalf("remove my key: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code = e.run("keys", "remove", "--user", "perm"); code != 0 || !strings.Contains(out, "removed from project") {
		t.Fatalf("remove perm: exit %d\n%s%s", code, out, errOut)
	}
	if v := e.projectItems()["ssh-keys"]; v != "junk" {
		t.Fatalf("after remove ssh-keys = %q", v)
	}
	if out, _, code = e.run("keys", "remove", "--user", "perm"); code != 0 || !strings.Contains(out, "nothing to remove") {
		t.Fatalf("second remove: exit %d\n%s", code, out)
	}
}

func TestResolveUsesCache(t *testing.T) {
	t.Parallel()
	e := newEmuEnv(t, emulator.Config{Nodes: 3})
	ctx := context.Background()
	d := e.deps(Stdio{Err: io.Discard})
	o := e.options()
	node := e.srv.Nodes()[2]
	n := e.srv.Node(node)
	want := access.Node{Project: e.srv.ProjectName(), Zone: n.Zone, Name: node, ID: n.ID}
	resolve := func(g globalOptions, node string) (access.Node, error) {
		if err := checkNode(node, g.Zone); err != nil {
			return access.Node{}, err
		}
		a, err := newResolver(g, d)
		if err != nil {
			return access.Node{}, err
		}
		return a.Resolve(ctx, node)
	}
	withZone := o
	withZone.Zone = n.Zone
	wrongZone := o
	wrongZone.Zone = "us-west1-c"

	tests := []struct {
		name      string
		opts      globalOptions
		node      string
		wantCalls int64
		wantErr   string
	}{
		{"cold: one aggregatedList", o, node, 1, ""},
		{"warm: no call", o, node, 0, ""},
		{"warm with --zone: no call", withZone, node, 0, ""},
		{"--zone disagreeing with the cache: one get", wrongZone, node, 1, "not found"},
		{"missing node: the lookup, and a list for a suggestion", o, "no-such-node", 2, "no instance named no-such-node"},
		{"no node", o, "", 0, "no node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.srv.Stats().APICalls
			got, err := resolve(tt.opts, tt.node)
			if calls := e.srv.Stats().APICalls - before; calls != tt.wantCalls {
				t.Errorf("%d API calls, want %d", calls, tt.wantCalls)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != want {
				t.Fatalf("resolve = %+v, %v; want %+v", got, err, want)
			}
		})
	}

	// A cached zone that is wrong (the node was recreated elsewhere) is
	// dropped and looked up again by commands that fetch the instance.
	cache, err := d.zoneCache(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := cache.Put(e.srv.ProjectName(), node, "us-west1-c", 1); err != nil {
		t.Fatal(err)
	}
	a, err := newResolver(o, d)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := a.Instance(ctx, node)
	if err != nil || got != want {
		t.Fatalf("instance with a stale cache = %+v, %v; want %+v", got, err, want)
	}
	if e, ok := cache.Get(want.Project, node); !ok || e.Zone != want.Zone || e.ID != want.ID {
		t.Fatalf("cache now %+v, %v; want the fresh zone", e, ok)
	}
}

// TestRequestedLifetime: --key-expire-after shorter than the line already
// there replaces it with the shorter one, and longer extends it, in the
// login and in keys ensure, saying so; a line about as long as asked
// stays.
func TestRequestedLifetime(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	node := e.node(0).Name
	expiry := func() time.Time {
		t.Helper()
		lines := keys.ParseLines(e.projectItems()["ssh-keys"])
		var mine []keys.Line
		for _, l := range lines {
			if l.Valid() && l.User == "nat" {
				mine = append(mine, l)
			}
		}
		if len(mine) != 1 {
			t.Fatalf("%d lines for nat, want 1:\n%s", len(mine), e.projectItems()["ssh-keys"])
		}
		return mine[0].ExpireOn
	}
	near := func(got time.Time, want time.Duration) bool {
		return got.Sub(time.Now().Add(want)).Abs() < time.Minute
	}
	if _, stderr, code := e.run("--user", "nat", node, "--", "true"); code != 0 || !near(expiry(), 24*time.Hour) {
		t.Fatalf("first login: exit %d, expiry %v:\n%s", code, expiry(), stderr)
	}
	_, stderr, code := e.run("--user", "nat", "--key-expire-after", "30m", node, "--", "true")
	if code != 0 || !near(expiry(), 30*time.Minute) || !strings.Contains(stderr, "in place of its line expiring") {
		t.Errorf("--key-expire-after 30m: exit %d, expiry %v, stderr:\n%s", code, expiry(), stderr)
	}
	writes := e.srv.Stats().MetadataWrites
	if _, stderr, code := e.run("--user", "nat", "--key-expire-after", "30m", node, "--", "true"); code != 0 || e.srv.Stats().MetadataWrites != writes {
		t.Errorf("30m again: exit %d, %d writes; want the 30m line kept:\n%s", code, e.srv.Stats().MetadataWrites-writes, stderr)
	}
	out, stderr, code := e.run("keys", "ensure", "--user", "nat", "--key-expire-after", "48h")
	if code != 0 || !near(expiry(), 48*time.Hour) || !strings.Contains(out, "in place of its line expiring") {
		t.Errorf("keys ensure --key-expire-after 48h: exit %d, expiry %v, stdout %q, stderr:\n%s", code, expiry(), out, stderr)
	}
}

// TestKeysSharedNameNotMine: under a shared user name (root), an expired
// line of someone else's key is not yours: keys ensure and keys prune
// leave it, and only --all-expired removes it. Both used to remove it.
func TestKeysSharedNameNotMine(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	theirs := keys.FormatExpiringLine("root", testkey.Public(t), time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))
	bob := keys.FormatLine("bob", testkey.Public(t), "bob@laptop")
	if err := e.srv.SetProjectMetadata(map[string]*string{"ssh-keys": new(theirs + "\n" + bob)}); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := e.run("keys", "ensure", "--user", "root"); code != 0 {
		t.Fatalf("ensure: exit %d: %s", code, errOut)
	}
	v := e.projectItems()["ssh-keys"]
	if !strings.HasPrefix(v, theirs+"\n"+bob+"\n") || strings.Count(v, "\n") != 2 {
		t.Fatalf("after ensure, ssh-keys = %q: want theirs and bob's kept, and one new line", v)
	}
	out, errOut, code := e.run("keys", "prune", "--user", "root")
	if code != 0 || e.projectItems()["ssh-keys"] != v {
		t.Fatalf("prune: exit %d, ssh-keys now %q\n%s%s", code, e.projectItems()["ssh-keys"], out, errOut)
	}
	if out, _, code = e.run("keys", "prune", "--all-expired"); code != 0 || strings.Contains(e.projectItems()["ssh-keys"], theirs) {
		t.Fatalf("prune --all-expired: exit %d, ssh-keys %q\n%s", code, e.projectItems()["ssh-keys"], out)
	}
}

// TestZoneFromGcloud: a node name in two zones is ambiguous without a zone;
// with gcloud's compute/zone set (CLOUDSDK_COMPUTE_ZONE) gkessh uses the
// node in that zone, as gcloud does, and --zone still wins.
func TestZoneFromGcloud(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 0)
	for _, zone := range []string{"us-west1-a", "us-west1-b"} {
		if _, err := e.srv.AddNode("dup", zone); err != nil {
			t.Fatal(err)
		}
	}
	if _, stderr, code := e.run("dup", "--", "true"); code != 255 || !strings.Contains(stderr, "several zones") {
		t.Fatalf("no zone: exit %d, want the ambiguity:\n%s", code, stderr)
	}
	run := func(env map[string]string, args ...string) string {
		t.Helper()
		for k, v := range env {
			e.setenv(k, v)
		}
		stdout, stderr, code := e.run(args...)
		if code != 0 {
			t.Fatalf("%q with %v: exit %d\n%s%s", args, env, code, stdout, stderr)
		}
		return stdout + stderr
	}
	b := map[string]string{"CLOUDSDK_COMPUTE_ZONE": "us-west1-b"}
	if out := run(b, "-v", "dup", "--", "true"); !strings.Contains(out, "found "+e.srv.ProjectName()+"/us-west1-b/dup") {
		t.Errorf("compute/zone us-west1-b: want the node there:\n%s", out)
	}
	if out := run(b, "-v", "--zone", "us-west1-a", "dup", "--", "true"); !strings.Contains(out, "found "+e.srv.ProjectName()+"/us-west1-a/dup") {
		t.Errorf("--zone us-west1-a over compute/zone: want the node there:\n%s", out)
	}
}

// TestPermanentLineKeepsComment: a permanent line keeps the .pub's comment,
// as gcloud writes it ("root:ssh-… root@vm"), so a later gcloud compute
// ssh finds it and adds no second line (keys TestPermanentLineAsGcloud
// checks that with gcloud's own code); an expiring line carries none, as
// gcloud's do not.
func TestPermanentLineKeepsComment(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	key, pub := testkey.WritePair(t, t.TempDir())
	if err := os.WriteFile(key+".pub", []byte(strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n")+" root@vm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := e.run("keys", "ensure", "--user", "root", "--key-file", key, "--key-expire-after", "0"); code != 0 {
		t.Fatalf("ensure: exit %d: %s", code, errOut)
	}
	if got, want := e.projectItems()["ssh-keys"], keys.FormatLine("root", pub, "root@vm"); got != want {
		t.Errorf("ssh-keys = %q, want %q", got, want)
	}
	if _, errOut, code := e.run("keys", "ensure", "--user", "exp", "--key-file", key); code != 0 {
		t.Fatalf("ensure: exit %d: %s", code, errOut)
	}
	lines := keys.ParseLines(e.projectItems()["ssh-keys"])
	if l := lines[len(lines)-1]; l.User != "exp" || !l.Expiring() || strings.Contains(l.Raw, "root@vm") {
		t.Errorf("expiring line %q", l.Raw)
	}
}
