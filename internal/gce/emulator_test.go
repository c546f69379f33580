//go:build unix

package gce_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/oauth2"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/emutest"
	"github.com/gkessh/gkessh/internal/gce"
)

// newEmulator serves an emulator with two nodes and returns it with a client
// for its project using its token.
func newEmulator(t *testing.T) (*emulator.Server, *gce.Client, string) {
	t.Helper()
	srv, url := emutest.Serve(t, emulator.Config{Nodes: 2, Logf: t.Logf})
	return srv, client(t, srv, url, srv.Token()), url
}

// client is a gce.Client for the emulator at url using token.
func client(t *testing.T, srv *emulator.Server, url, token string) *gce.Client {
	t.Helper()
	c, err := gce.New(context.Background(), srv.ProjectName(), url+"/compute/v1/", oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClientAgainstEmulator(t *testing.T) {
	srv, c, _ := newEmulator(t)
	ctx := testCtx(t)
	name := srv.Nodes()[0]
	found, err := c.Locate(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	zone := gce.ZoneName(found.Zone)
	inst, err := c.Instance(ctx, zone, name)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Id != srv.Node(name).ID || inst.Id == 0 {
		t.Fatalf("instance id %d, emulator says %d", inst.Id, srv.Node(name).ID)
	}

	// Set instance metadata with the read fingerprint, keeping the items.
	md := inst.Metadata
	gce.SetMetadataValue(md, "x-test", "1")
	if err := c.SetInstanceMetadata(ctx, zone, name, md); err != nil {
		t.Fatal(err)
	}
	// The same, now stale, fingerprint must conflict.
	if err := c.SetInstanceMetadata(ctx, zone, name, md); !gce.IsConflict(err) {
		t.Fatalf("stale fingerprint: err = %v, want a 412", err)
	}
	p, err := c.Project(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pmd := p.CommonInstanceMetadata
	gce.SetMetadataValue(pmd, "x-test", "2")
	if err := c.SetProjectMetadata(ctx, pmd); err != nil {
		t.Fatal(err)
	}
	if err := c.SetProjectMetadata(ctx, pmd); !gce.IsConflict(err) {
		t.Fatalf("stale project fingerprint: err = %v, want a 412", err)
	}

	keys, err := c.HostKeys(ctx, zone, name)
	if err != nil {
		t.Fatal(err)
	}
	want := srv.Node(name).HostKeys()
	if len(keys) == 0 || len(keys) != len(want) {
		t.Fatalf("got %d host keys, emulator has %d", len(keys), len(want))
	}

	// No guest attributes → no keys and no error, as gcloud treats it.
	if err := srv.SetInstanceMetadata(name, map[string]*string{gce.KeyEnableGuestAttributes: new("FALSE")}); err != nil {
		t.Fatal(err)
	}
	if keys, err := c.HostKeys(ctx, zone, name); err != nil || keys != nil {
		t.Fatalf("without guest attributes: %v, %v; want nil, nil", keys, err)
	}

	if _, err := c.Instance(ctx, zone, "no-such-node"); !gce.IsNotFound(err) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing instance: err = %v, want a 404", err)
	}
	var noInst *gce.NoInstanceError
	if _, err := c.Locate(ctx, "no-such-node"); !errors.As(err, &noInst) || !strings.Contains(err.Error(), "no instance named") {
		t.Fatalf("Locate of a missing node: err = %v, want a *gce.NoInstanceError", err)
	}
	// Names lists the project's, for a suggestion: in every zone, or one.
	if names := c.Names(ctx, ""); !slices.Contains(names, name) {
		t.Errorf("Names = %q, want %s among them", names, name)
	}
	if names := c.Names(ctx, zone); !slices.Contains(names, name) {
		t.Errorf("Names(%s) = %q, want %s among them", zone, names, name)
	}
	if names := c.Names(ctx, "no-such-zone"); len(names) != 0 {
		t.Errorf("Names(no-such-zone) = %q, want none", names)
	}
}

// TestSetEmptyMetadataRemovesEveryItem checks that an empty item list,
// which goes on the wire without "items" as the official client sends it,
// still replaces the items.
func TestSetEmptyMetadataRemovesEveryItem(t *testing.T) {
	srv, c, _ := newEmulator(t)
	ctx := testCtx(t)
	name := srv.Nodes()[0]
	inst, err := c.Locate(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	zone := gce.ZoneName(inst.Zone)
	if len(inst.Metadata.Items) == 0 {
		t.Fatal("the emulator's node starts without metadata; the test needs some")
	}
	if err := c.SetInstanceMetadata(ctx, zone, name, &gce.Metadata{Fingerprint: inst.Metadata.Fingerprint}); err != nil {
		t.Fatal(err)
	}
	after, err := c.Instance(ctx, zone, name)
	if err != nil {
		t.Fatal(err)
	}
	if after.Metadata != nil && len(after.Metadata.Items) != 0 {
		t.Fatalf("items after setting none: %d, want 0", len(after.Metadata.Items))
	}
}

func TestUpdateMetadataRetriesInjectedConflicts(t *testing.T) {
	srv, c, _ := newEmulator(t)
	ctx := testCtx(t)
	srv.SetFaults(emulator.Faults{MetadataConflicts: 3})
	before := srv.Stats()
	calls := 0
	changed, err := c.UpdateProjectMetadata(ctx, nil, func(md *gce.Metadata) (bool, error) {
		calls++
		gce.SetMetadataValue(md, "x-test", "v")
		return true, nil
	})
	if err != nil || !changed {
		t.Fatalf("update = %v, %v", changed, err)
	}
	if calls != 4 {
		t.Fatalf("edit ran %d times, want 4 (3 conflicts + 1 success)", calls)
	}
	if w := srv.Stats().MetadataWrites - before.MetadataWrites; w != 1 {
		t.Fatalf("%d metadata writes, want 1", w)
	}
}

func TestErrorsNamePermissions(t *testing.T) {
	srv, _, url := newEmulator(t)
	srv.AddToken("no-rights") // valid token, no project: every call is 403
	c := client(t, srv, url, "no-rights")
	ctx := testCtx(t)
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"get project", func() error { _, err := c.Project(ctx); return err }, "compute.projects.get"},
		{"set project metadata", func() error { return c.SetProjectMetadata(ctx, &gce.Metadata{}) }, gce.PermSetProjectMetadata},
		{"set instance metadata", func() error { return c.SetInstanceMetadata(ctx, "us-west1-a", "n", &gce.Metadata{}) }, gce.PermSetInstanceMetadata},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want permission denied naming %s", err, tt.want)
			}
		})
	}
}

// TestLocateNameInTwoZones: a name in two zones (GCE's names are unique
// per zone) is an AmbiguousZoneError naming both, and each zone's
// instance is found by zone.
func TestLocateNameInTwoZones(t *testing.T) {
	srv, c, _ := newEmulator(t)
	ctx := testCtx(t)
	for _, zone := range []string{"us-west1-a", "us-west1-c"} {
		if _, err := srv.AddNode("dup", zone); err != nil {
			t.Fatal(err)
		}
	}
	var amb *gce.AmbiguousZoneError
	if _, err := c.Locate(ctx, "dup"); !errors.As(err, &amb) || strings.Join(amb.Zones, " ") != "us-west1-a us-west1-c" {
		t.Fatalf("Locate(dup) = %v, want an AmbiguousZoneError naming us-west1-a and us-west1-c", err)
	}
	for _, zone := range amb.Zones {
		inst, err := c.Instance(ctx, zone, "dup")
		if err != nil || inst.Id != srv.NodeIn(zone, "dup").ID {
			t.Errorf("Instance(%s, dup): %v, %v", zone, inst, err)
		}
	}
}

// TestListFollowsPages1200: with 1200 instances GCE answers aggregatedList
// in pages of at most 500; List follows every page and returns each
// instance once, in three calls.
// TestListSharesValues checks that the nodes' equal metadata values (GKE's
// boot scripts, 43 KB a node) are held once for a listing, not once per
// node, while each item keeps a value of its own to change.
func TestListSharesValues(t *testing.T) {
	_, c, _ := newEmulator(t)
	all, err := c.List(testCtx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	var scripts []*string
	for _, in := range all {
		for _, it := range in.Metadata.Items {
			if it.Key == "configure-sh" {
				scripts = append(scripts, it.Value)
			}
		}
	}
	if len(scripts) < 2 || len(*scripts[0]) < 1000 || *scripts[0] != *scripts[1] {
		t.Fatalf("want two nodes with the same long configure-sh, got %d", len(scripts))
	}
	if unsafe.StringData(*scripts[0]) != unsafe.StringData(*scripts[1]) {
		t.Errorf("two nodes' configure-sh are two copies")
	}
	*scripts[0] = "changed"
	if *scripts[1] == "changed" {
		t.Errorf("changing one node's value changed another's")
	}
}

func TestListFollowsPages1200(t *testing.T) {
	if testing.Short() {
		t.Skip("1200 nodes")
	}
	srv, url := emutest.Serve(t, emulator.Config{Nodes: 1200, Logf: t.Logf})
	c := client(t, srv, url, srv.Token())
	srv.ResetStats()
	all, err := c.List(testCtx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, in := range all {
		seen[gce.ZoneName(in.Zone)+"/"+in.Name] = true
	}
	if len(all) != 1200 || len(seen) != 1200 {
		t.Errorf("List: %d instances, %d distinct; want 1200", len(all), len(seen))
	}
	if calls := srv.Stats().APICalls; calls != 3 {
		t.Errorf("%d API calls, want 3 pages of at most 500", calls)
	}
}
