//go:build unix

package access_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/oauth2"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/keys"
)

// world is an emulator with nodes, and an Access for user alice on it with
// a key in a temporary home. It records the API calls made.
type world struct {
	t   *testing.T
	srv *emulator.Server
	url string
	dir string

	mu    sync.Mutex
	calls []string // METHOD PATH?QUERY
}

func newWorld(t *testing.T, nodes int) *world {
	t.Helper()
	srv, err := emulator.New(emulator.Config{Nodes: nodes, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, srv: srv, dir: t.TempDir()}
	hs := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.calls = append(w.calls, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		w.mu.Unlock()
		srv.ServeHTTP(rw, r)
	}))
	t.Cleanup(func() {
		hs.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("close emulator: %v", err)
		}
	})
	w.url = hs.URL
	return w
}

// taken returns the calls made since the last taken, those whose path
// contains part.
func (w *world) taken(part string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, c := range w.calls {
		if strings.Contains(c, part) {
			out = append(out, c)
		}
	}
	w.calls = nil
	return out
}

// access returns an Access with tune applied to its configuration, using
// token (the emulator's own when "").
func (w *world) access(token string, tune func(*access.Config)) *access.Access {
	if token == "" {
		token = w.srv.Token()
	}
	keyFile := filepath.Join(w.dir, "id")
	cfg := access.Config{
		Project: w.srv.ProjectName(),
		Compute: func(ctx context.Context) (*gce.Client, error) {
			c, err := gce.New(ctx, w.srv.ProjectName(), w.url+"/compute/v1/", oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}))
			if err == nil {
				// The emulator serves OS Login too.
				c.APIs = map[string]string{"oslogin": w.url + "/"}
			}
			return c, err
		},
		Zones:   &gce.Cache{Dir: filepath.Join(w.dir, "cache")},
		User:    "alice",
		KeyFile: keyFile,
		Key:     func() (*keys.KeyPair, error) { return keys.LoadOrCreate(keyFile) },
		Account: func() (string, error) { return "owner@" + w.srv.ProjectName() + ".example", nil },
		// 24 h, as the CLI's default.
		ExpireAfter: 24 * time.Hour,
		KnownHosts:  filepath.Join(w.dir, "known_hosts"),
	}
	if tune != nil {
		tune(&cfg)
	}
	a := access.New(cfg)
	w.t.Cleanup(func() { a.Close() })
	return a
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestPlanMode: the plan says how the guest takes keys, as its agent
// decides (instance value first, then the project's), and planning
// writes nothing.
func TestPlanMode(t *testing.T) {
	tests := []struct {
		name      string
		project   map[string]string
		node      map[string]string
		want      access.Mode
		wantScope string
	}{
		{"nothing set", nil, nil, access.MetadataKeys, keys.ScopeProject},
		{"os login on the project", map[string]string{"enable-oslogin": "TRUE"}, map[string]string{"enable-oslogin": ""}, access.OSLogin, ""},
		{"GKE node's own enable-oslogin=false wins over the project's", map[string]string{"enable-oslogin": "TRUE"}, map[string]string{"enable-oslogin": "false"}, access.MetadataKeys, keys.ScopeProject},
		{"unparsable instance value: the project's os login counts", map[string]string{"enable-oslogin": "TRUE"}, map[string]string{"enable-oslogin": "maybe"}, access.OSLogin, ""},
		{"os login off on the instance wins", map[string]string{"enable-oslogin": "TRUE"}, map[string]string{"enable-oslogin": "FALSE"}, access.MetadataKeys, keys.ScopeProject},
		{"blocked project keys: the instance's own", nil, map[string]string{"block-project-ssh-keys": "TRUE"}, access.MetadataKeys, keys.ScopeInstance},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, 1)
			node := w.srv.Nodes()[0]
			// "" removes the item: the emulator's GKE nodes set
			// enable-oslogin=false.
			set := func(m map[string]string) map[string]*string {
				out := map[string]*string{}
				for k, v := range m {
					if v != "" {
						out[k] = &v
					} else {
						out[k] = nil
					}
				}
				return out
			}
			if err := w.srv.SetProjectMetadata(set(tt.project)); err != nil {
				t.Fatal(err)
			}
			if err := w.srv.SetInstanceMetadata(node, set(tt.node)); err != nil {
				t.Fatal(err)
			}
			before := w.srv.Stats()
			p, err := w.access("", nil).Plan(testCtx(t), node)
			if err != nil {
				t.Fatal(err)
			}
			if p.Mode != tt.want || p.Scope != tt.wantScope || !p.WriteDue {
				t.Errorf("plan: mode %v, scope %q, write due %v; want %v, %q, true", p.Mode, p.Scope, p.WriteDue, tt.want, tt.wantScope)
			}
			if tt.want == access.OSLogin && p.User != "owner_"+strings.ReplaceAll(w.srv.ProjectName(), "-", "_")+"_example" {
				t.Errorf("OS Login user %q, want the profile's POSIX user", p.User)
			}
			if after := w.srv.Stats(); after.MetadataWrites != before.MetadataWrites {
				t.Errorf("planning wrote metadata")
			}
		})
	}
}

// TestGrantOnceForMany: plans of several nodes share one project write and
// one OS Login import; a node that blocks project keys gets its own line.
func TestGrantOnceForMany(t *testing.T) {
	w := newWorld(t, 5)
	nodes := w.srv.Nodes()
	on := "TRUE"
	for _, n := range nodes[3:] {
		if err := w.srv.SetInstanceMetadata(n, map[string]*string{"enable-oslogin": &on}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.srv.SetInstanceMetadata(nodes[2], map[string]*string{"block-project-ssh-keys": &on}); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	a := w.access("", nil)
	var plans []*access.Plan
	for _, n := range nodes {
		p, err := a.Plan(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		plans = append(plans, p)
	}
	calls := w.srv.Stats().APICalls
	var grants []*access.Granted
	for _, p := range plans {
		g, err := a.Grant(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		grants = append(grants, g)
	}
	if w := w.srv.Stats().MetadataWrites; w != 2 {
		t.Errorf("%d metadata writes, want 2 (the project's, and the blocking node's own)", w)
	}
	if grants[0] != grants[1] || !grants[0].Shared || !grants[0].Wrote || grants[0].Scope != keys.ScopeProject {
		t.Errorf("project grants %+v and %+v: want one shared write", grants[0], grants[1])
	}
	if g := grants[2]; g.Shared || !g.Wrote || g.Scope != keys.ScopeInstance {
		t.Errorf("blocking node's grant %+v: want its own line", g)
	}
	if grants[3] != grants[4] || !grants[3].Imported {
		t.Errorf("OS Login grants %+v and %+v: want one import", grants[3], grants[4])
	}
	// Project read once by the plans; here: the project write (get op),
	// the instance write, one import.
	if n := w.srv.Stats().APICalls - calls; n > 6 {
		t.Errorf("%d API calls to grant five nodes", n)
	}

	// Planned again, nothing is due: the keys are there for a day.
	b := w.access("", nil)
	for _, n := range nodes {
		p, err := b.Plan(ctx, n)
		if err != nil || p.WriteDue {
			t.Errorf("%s planned again: %+v, %v; want nothing due", n, p, err)
		}
	}
}

// TestGrantProjectRefused: a caller who may not write project metadata
// gets the key into each node's own metadata, as gcloud falls back; one
// who asked for project scope gets the refusal.
func TestGrantProjectRefused(t *testing.T) {
	w := newWorld(t, 2)
	nodes := w.srv.Nodes()
	w.srv.AddGrant("instance-only", emulator.Grant{Projects: []string{w.srv.ProjectName()},
		Permissions: []string{"compute.instances.get", "compute.instances.list", "compute.instances.setMetadata", "compute.projects.get", "compute.zoneOperations.get", "iam.serviceAccounts.actAs"}})
	ctx := testCtx(t)
	a := w.access("instance-only", nil)
	for _, n := range nodes {
		p, err := a.Plan(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		g, err := a.Grant(ctx, p)
		if err != nil || !g.ProjectRefused || g.Scope != keys.ScopeInstance || !g.Wrote {
			t.Fatalf("%s: %+v, %v; want the instance's own line after the refusal", n, g, err)
		}
	}
	if w := w.srv.Stats().MetadataWrites; w != 2 {
		t.Errorf("%d metadata writes, want one per node", w)
	}
	b := w.access("instance-only", func(c *access.Config) { c.Scope = keys.ScopeProject; c.User = "bob" })
	p, err := b.Plan(ctx, nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Grant(ctx, p); err == nil || !strings.Contains(err.Error(), "permission") {
		t.Errorf("--scope project refused: err = %v", err)
	}
}

// TestOSLoginImportAsGcloud: as gcloud does, the key is imported only when
// the profile lacks it, with the node's region; a key already there whose
// expiry is near gets its expiry updated (sshPublicKeys.patch), not a
// second import; a key that lasts is left alone.
func TestOSLoginImportAsGcloud(t *testing.T) {
	w := newWorld(t, 1)
	srv := w.srv
	node := srv.Nodes()[0]
	on := "TRUE"
	if err := srv.SetInstanceMetadata(node, map[string]*string{"enable-oslogin": &on}); err != nil {
		t.Fatal(err)
	}
	zone := srv.Node(node).Zone
	region := zone[:strings.LastIndex(zone, "-")]
	ctx := testCtx(t)
	taken := func() []string { return w.taken("/v1/users/") }
	grant := func(now time.Time) *access.Granted {
		t.Helper()
		a := w.access("", func(c *access.Config) { c.Now = func() time.Time { return now } })
		p, err := a.Plan(ctx, node)
		if err != nil {
			t.Fatal(err)
		}
		g, err := a.Grant(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	// A key of gcloud's, with its comment, which the import keeps.
	kp, err := keys.LoadOrCreate(filepath.Join(w.dir, "id"))
	if err != nil {
		t.Fatal(err)
	}
	kp.Close()
	if err := os.WriteFile(filepath.Join(w.dir, "id.pub"), append(bytes.TrimSpace(ssh.MarshalAuthorizedKey(kp.Public)), " alice@laptop\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if g := grant(now); !g.Wrote || !g.Imported {
		t.Fatalf("first grant %+v: want an import", g)
	}
	c := taken()
	if len(c) != 2 || !strings.HasPrefix(c[0], "GET ") || !strings.Contains(c[1], ":importSshPublicKey?") || !strings.Contains(c[1], "regions="+region) {
		t.Errorf("first grant's OS Login calls %q: want the profile read, then an import with regions=%s", c, region)
	}
	c0, err := w.access("", nil).Compute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := c0.LoginProfile(ctx, "owner@"+srv.ProjectName()+".example")
	if err != nil {
		t.Fatal(err)
	}
	if _, k, ok := prof.Find(kp.Public); !ok || !strings.HasSuffix(k.Key, " alice@laptop") {
		t.Errorf("profile key %q (found %v): want the .pub line with its comment", k.Key, ok)
	}
	w.taken("")
	if g := grant(now.Add(time.Hour)); g.Wrote {
		t.Errorf("second grant %+v: the key lasts, nothing to write", g)
	}
	if c := taken(); len(c) != 1 {
		t.Errorf("second grant's OS Login calls %q: want the profile read only", c)
	}
	late := now.Add(23*time.Hour + 30*time.Minute)
	if g := grant(late); !g.Wrote || g.Imported {
		t.Errorf("grant near expiry %+v: want the expiry updated, not an import", g)
	}
	c = taken()
	if len(c) != 2 || !strings.HasPrefix(c[1], "PATCH ") || !strings.Contains(c[1], "/sshPublicKeys/") || !strings.Contains(c[1], "updateMask=expirationTimeUsec") {
		t.Errorf("near expiry, OS Login calls %q: want the profile read, then a patch of expirationTimeUsec", c)
	}
	a := w.access("", nil)
	p, err := a.Plan(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	if want := late.Add(24 * time.Hour); p.WriteDue || p.Expire.Sub(want).Abs() > time.Second {
		t.Errorf("after the patch the key expires %v (due %v), want %v", p.Expire, p.WriteDue, want)
	}
}

// TestDefaultZone: with gcloud's compute/zone set, a node is fetched from
// that zone (one instances.get, no search of every zone), as gcloud does;
// a node elsewhere is still found; a warm cache answers only for that
// zone.
func TestDefaultZone(t *testing.T) {
	w := newWorld(t, 1)
	node := w.srv.Nodes()[0]
	zone := w.srv.Node(node).Zone
	ctx := testCtx(t)
	a := w.access("", func(c *access.Config) { c.DefaultZone = zone })
	w.taken("")
	if n, err := a.Resolve(ctx, node); err != nil || n.Zone != zone {
		t.Fatalf("resolve: %+v, %v", n, err)
	}
	if c := w.taken("/compute/v1/"); len(c) != 1 || !strings.Contains(c[0], "/zones/"+zone+"/instances/"+node) {
		t.Errorf("calls %q: want one instances.get in %s", c, zone)
	}
	if _, err := a.Resolve(ctx, node); err != nil {
		t.Fatal(err)
	}
	if c := w.taken(""); len(c) != 0 {
		t.Errorf("warm resolve made calls %q", c)
	}
	elsewhere := w.access("", func(c *access.Config) {
		c.DefaultZone = "europe-west1-b"
		c.Zones = nil
	})
	if n, err := elsewhere.Resolve(ctx, node); err != nil || n.Zone != zone {
		t.Fatalf("resolve with compute/zone elsewhere: %+v, %v", n, err)
	}
	if c := w.taken("/compute/v1/"); len(c) != 2 || !strings.Contains(c[0], "/zones/europe-west1-b/") || !strings.Contains(c[1], "/aggregated/") {
		t.Errorf("calls %q: want the get in compute/zone, then the search", c)
	}
}
