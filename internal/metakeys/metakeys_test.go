//go:build unix

package metakeys_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/oauth2"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/emutest"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/metakeys"
	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/keys"
)

// setup serves an emulator with two nodes and returns a client for it.
func setup(t *testing.T) (*emulator.Server, *gce.Client) {
	t.Helper()
	srv, url := emutest.Serve(t, emulator.Config{Nodes: 2, Logf: t.Logf})
	c, err := gce.New(context.Background(), srv.ProjectName(), url+"/compute/v1/",
		oauth2.StaticTokenSource(&oauth2.Token{AccessToken: srv.Token()}))
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// snapshot reads the project's and inst's metadata, to compare before and
// after.
func snapshot(t *testing.T, ctx context.Context, c *gce.Client, inst *gce.Instance) (proj, node *gce.Metadata) {
	t.Helper()
	p, err := c.Project(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i, err := c.Instance(ctx, gce.ZoneName(inst.Zone), inst.Name)
	if err != nil {
		t.Fatal(err)
	}
	return p.CommonInstanceMetadata, i.Metadata
}

func value(md *gce.Metadata, key string) string {
	v, _ := gce.MetadataValue(md, key)
	return v
}

// existing is a messy ssh-keys value that must survive every write byte for
// byte: other users, a malformed line, CRLF, blank lines, trailing space.
func existing(t *testing.T) string {
	other := testkey.Fixed(t, 99)
	return strings.Join([]string{
		keys.FormatLine("bob", other, "bob@laptop"),
		"this line is not a key  ",
		"carol:" + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other))) + " carol\r",
		"",
		`dave:ssh-rsa AAAA google-ssh {"userName":"dave","expireOn":"bad"}`,
	}, "\n")
}

func TestEnsure(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	pub := testkey.Fixed(t, 1)
	tests := []struct {
		name      string
		project   map[string]string // project metadata to set first
		node      map[string]string // first node's metadata to set first
		withNode  bool
		scope     string
		dryRun    bool
		wantScope string
		wantKey   string
		wantErr   string
	}{
		{name: "project by default", wantScope: keys.ScopeProject, wantKey: keys.MetadataKey},
		{name: "project for a node", withNode: true, wantScope: keys.ScopeProject, wantKey: keys.MetadataKey},
		{name: "instance when asked", withNode: true, scope: keys.ScopeInstance, wantScope: keys.ScopeInstance, wantKey: keys.MetadataKey},
		{name: "instance when project keys are blocked", withNode: true, node: map[string]string{"block-project-ssh-keys": "TRUE"}, wantScope: keys.ScopeInstance, wantKey: keys.MetadataKey},
		{name: "legacy sshKeys gets appended", withNode: true, node: map[string]string{"sshKeys": "old:" + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(testkey.Fixed(t, 7))))}, wantScope: keys.ScopeInstance, wantKey: keys.LegacyMetadataKey},
		{name: "project refused when blocked", withNode: true, scope: keys.ScopeProject, node: map[string]string{"block-project-ssh-keys": "true"}, wantErr: "ignores project ssh keys"},
		{name: "dry run", dryRun: true, wantScope: keys.ScopeProject, wantKey: keys.MetadataKey},
		{name: "over the size limit", project: map[string]string{"ssh-keys": strings.Repeat("#", keys.MaxValueBytes-50)}, wantErr: "over GCE's limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := setup(t)
			ctx := testCtx(t)
			nodeName := srv.Nodes()[0]
			set := func(m map[string]string) map[string]*string {
				out := map[string]*string{"ssh-keys": new(existing(t)), "other-item": new("keep me\n")}
				for k, v := range m {
					out[k] = new(v)
				}
				return out
			}
			if err := srv.SetProjectMetadata(set(tt.project)); err != nil {
				t.Fatal(err)
			}
			if err := srv.SetInstanceMetadata(nodeName, set(tt.node)); err != nil {
				t.Fatal(err)
			}
			located, err := c.Locate(ctx, nodeName)
			if err != nil {
				t.Fatal(err)
			}
			var inst *gce.Instance
			if tt.withNode {
				inst = located
			}
			projBefore, nodeBefore := snapshot(t, ctx, c, located)
			writesBefore := srv.Stats().MetadataWrites

			res, err := metakeys.Ensure(ctx, c, inst, pub, metakeys.EnsureOptions{
				User: "alice", Scope: tt.scope, ExpireAfter: 24 * time.Hour, DryRun: tt.dryRun,
				Now: func() time.Time { return now },
			})
			projAfter, nodeAfter := snapshot(t, ctx, c, located)
			writes := srv.Stats().MetadataWrites - writesBefore
			if tt.wantErr != "" || tt.dryRun {
				if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if tt.dryRun && (err != nil || !res.Wrote || res.Line == "") {
					t.Fatalf("dry run: %+v, %v; want the line it would write", res, err)
				}
				if writes != 0 || projAfter.Fingerprint != projBefore.Fingerprint || nodeAfter.Fingerprint != nodeBefore.Fingerprint {
					t.Fatalf("metadata changed (%d writes)", writes)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !res.Wrote || res.Scope != tt.wantScope || res.Item != tt.wantKey || writes != 1 {
				t.Fatalf("Ensure = %+v with %d writes; want a write to %s %s", res, writes, tt.wantScope, tt.wantKey)
			}
			before, after := projBefore, projAfter
			if res.Scope == keys.ScopeInstance {
				before, after = nodeBefore, nodeAfter
				if projAfter.Fingerprint != projBefore.Fingerprint {
					t.Fatal("project metadata changed on an instance write")
				}
			}
			// Every item is where it was with the same value, except
			// res.Key, which gained exactly res.Line.
			for i, it := range before.Items {
				got := after.Items[i]
				want := *it.Value
				if it.Key == res.Item {
					want += "\n" + res.Line
				}
				if got.Key != it.Key || *got.Value != want {
					t.Fatalf("item %d: %s=%q, want %s=%q", i, got.Key, *got.Value, it.Key, want)
				}
			}
			l := keys.ParseLine(res.Line)
			if !l.Valid() || l.User != "alice" || !keys.SameKey(l.Key, pub) || !l.ExpireOn.Equal(now.Add(24*time.Hour)) {
				t.Fatalf("written line %q", res.Line)
			}

			// Warm: nothing to write the second time.
			again, err := metakeys.Ensure(ctx, c, inst, pub, metakeys.EnsureOptions{User: "alice", Scope: tt.scope, ExpireAfter: 24 * time.Hour, Now: func() time.Time { return now.Add(time.Hour) }})
			if err != nil || again.Wrote {
				t.Fatalf("second Ensure = %+v, %v; want no write", again, err)
			}
			if w := srv.Stats().MetadataWrites - writesBefore; w != 1 {
				t.Fatalf("%d writes after the warm run, want 1", w)
			}
		})
	}
}

// TestEnsureGrantsAccess: the guest agent of the emulated node installs the
// key Ensure wrote.
func TestEnsureGrantsAccess(t *testing.T) {
	srv, c := setup(t)
	ctx := testCtx(t)
	name := srv.Nodes()[1]
	inst, err := c.Locate(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	pub := testkey.Fixed(t, 3)
	if _, err := metakeys.Ensure(ctx, c, inst, pub, metakeys.EnsureOptions{User: "erin", ExpireAfter: time.Hour}); err != nil {
		t.Fatal(err)
	}
	for {
		for _, k := range srv.Node(name).InstalledKeys()["erin"] {
			if keys.SameKey(k, pub) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("the guest agent never installed the key")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestEnsureRefreshesExpiringKey(t *testing.T) {
	srv, c := setup(t)
	ctx := testCtx(t)
	pub := testkey.Fixed(t, 4)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ensure := func(at time.Time) metakeys.EnsureResult {
		t.Helper()
		res, err := metakeys.Ensure(ctx, c, nil, pub, metakeys.EnsureOptions{User: "frank", ExpireAfter: 24 * time.Hour, Now: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := ensure(now)
	if second := ensure(now.Add(22 * time.Hour)); second.Wrote {
		t.Fatal("refreshed a key with 2 h left")
	}
	third := ensure(now.Add(23*time.Hour + 30*time.Minute))
	if !third.Wrote || third.Line == first.Line {
		t.Fatal("did not refresh a key with 30 min left")
	}
	p, err := c.Project(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v := value(p.CommonInstanceMetadata, keys.MetadataKey); v != third.Line {
		t.Fatalf("ssh-keys = %q, want only the refreshed line %q", v, third.Line)
	}
	if w := srv.Stats().MetadataWrites; w != 2 {
		t.Fatalf("%d metadata writes, want 2", w)
	}
}

// TestEnsureExpireAt: a line asked to expire at a time gets that time,
// whenever the write happens (ExpireAfter is ignored), is left alone while
// it lasts, and is refused, not written permanent or already expired, once
// the time has passed.
func TestEnsureExpireAt(t *testing.T) {
	_, c := setup(t)
	ctx := testCtx(t)
	pub := testkey.Fixed(t, 8)
	at := time.Date(2026, 5, 2, 12, 0, 0, 0, time.UTC)
	ensure := func(now time.Time) (metakeys.EnsureResult, error) {
		return metakeys.Ensure(ctx, c, nil, pub, metakeys.EnsureOptions{User: "gina", ExpireAt: at, ExpireAfter: time.Minute, ExactExpiry: true,
			Now: func() time.Time { return now }})
	}
	for _, now := range []time.Time{at.Add(-5 * time.Hour), at.Add(-4*time.Hour - 59*time.Minute)} {
		res, err := ensure(now)
		if err != nil {
			t.Fatal(err)
		}
		if l := keys.ParseLine(res.Line); res.Line != "" && !l.ExpireOn.Equal(at) {
			t.Errorf("written at %v: expires %v, want %v", now, l.ExpireOn, at)
		}
	}
	p, err := c.Project(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l := keys.ParseLines(value(p.CommonInstanceMetadata, keys.MetadataKey)); len(l) != 1 || !l[0].ExpireOn.Equal(at) {
		t.Errorf("ssh-keys = %q, want one line expiring %v", value(p.CommonInstanceMetadata, keys.MetadataKey), at)
	}
	if _, err := ensure(at); err == nil || !strings.Contains(err.Error(), "has passed") {
		t.Errorf("written at the expiry: %v, want a refusal", err)
	}
}

func TestRemove(t *testing.T) {
	srv, c := setup(t)
	ctx := testCtx(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	k1, k2 := testkey.Fixed(t, 5), testkey.Fixed(t, 6)
	lines := []string{
		keys.FormatExpiringLine("gina", k1, now.Add(-time.Hour)),
		"kept verbatim ",
		keys.FormatLine("gina", k2, "gina@desk"),
		keys.FormatExpiringLine("hank", k1, now.Add(-time.Minute)),
		keys.FormatExpiringLine("hank", k2, now.Add(time.Hour)),
	}
	tests := []struct {
		name   string
		sel    keys.Selector
		dryRun bool
		want   []int // indexes of ssh-keys lines left
		gone   int   // lines removed from ssh-keys and sshKeys (which holds line 3)
	}{
		{"gina's expired", keys.ExpiredLines("gina", nil, now), false, []int{1, 2, 3, 4}, 1},
		{"gina's expired, key k2: not that line", keys.ExpiredLines("gina", k2, now), false, []int{0, 1, 2, 3, 4}, 0},
		{"everyone's expired", keys.ExpiredLines("", nil, now), false, []int{1, 2, 4}, 3},
		{"all of hank", keys.UserLines("hank", nil), false, []int{0, 1, 2}, 3},
		{"gina's k2 only", keys.UserLines("gina", k2), false, []int{0, 1, 3, 4}, 1},
		{"dry run", keys.UserLines("hank", nil), true, []int{0, 1, 2, 3, 4}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := srv.SetProjectMetadata(map[string]*string{"ssh-keys": new(strings.Join(lines, "\n")), "sshKeys": new(lines[3])}); err != nil {
				t.Fatal(err)
			}
			gone, err := metakeys.Remove(ctx, c, nil, tt.sel, metakeys.RemoveOptions{Scope: keys.ScopeProject, DryRun: tt.dryRun})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, i := range tt.want {
				want = append(want, lines[i])
			}
			p, err := c.Project(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := value(p.CommonInstanceMetadata, keys.MetadataKey)
			if got != strings.Join(want, "\n") {
				t.Fatalf("ssh-keys now\n%s\nwant\n%s", got, strings.Join(want, "\n"))
			}
			if len(gone) != tt.gone {
				t.Fatalf("reported %d removed lines, want %d", len(gone), tt.gone)
			}
		})
	}
}
