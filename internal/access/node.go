package access

import (
	"context"
	"errors"
	"fmt"

	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/suggest"
)

// Node is where a node lives: enough to open a tunnel (Project, Zone, Name)
// and to pin its host keys (ID, for the HostKeyAlias compute.ID).
type Node struct {
	Project string
	Zone    string
	Name    string
	ID      uint64
}

// String is n as PROJECT/ZONE/NAME, for messages.
func (n Node) String() string { return fmt.Sprintf("%s/%s/%s", n.Project, n.Zone, n.Name) }

// NodeOf is where inst lives, in project.
func NodeOf(project string, inst *gce.Instance) Node {
	return Node{Project: project, Zone: gce.ZoneName(inst.Zone), Name: inst.Name, ID: inst.Id}
}

// Resolve finds the node's zone and id, cheapest first: the zone cache
// (in Config.Zone, or Config.DefaultZone, when set), then one
// instances.get when the zone is known, else one aggregatedList. A cache hit makes no API call and builds
// no client, so a warm ProxyCommand start costs one small file read. The
// caller has checked name and Config.Zone (gce.CheckName, gce.CheckZone).
func (a *Access) Resolve(ctx context.Context, name string) (Node, error) {
	if n, ok := a.cached(name); ok && (a.cfg.DefaultZone == "" || a.cfg.DefaultZone == n.Zone) {
		return n, nil
	}
	n, _, err := a.Instance(ctx, name)
	return n, err
}

// Instance fetches the node's instance, from the cached zone when there is
// one, and stores where it lives in the cache. A cached zone that turns
// out wrong is dropped and the node looked up afresh.
func (a *Access) Instance(ctx context.Context, name string) (Node, *gce.Instance, error) {
	c, err := a.Compute(ctx)
	if err != nil {
		return Node{}, nil, err
	}
	n := Node{Project: a.cfg.Project, Name: name}
	cachedZone := ""
	if e, ok := a.cached(name); ok {
		cachedZone = e.Zone
	}
	inst, err := a.lookup(ctx, c, cachedZone, name)
	if err != nil && cachedZone != "" && gce.IsNotFound(err) {
		// The cached zone is stale: the instance was deleted or recreated
		// elsewhere. Forget it and search again.
		a.Forget(Node{Project: a.cfg.Project, Name: name})
		inst, err = a.lookup(ctx, c, "", name)
	}
	var none *gce.NoInstanceError
	if errors.As(err, &none) && a.cfg.Suggest {
		none.Near = suggest.Near(name, c.Names(ctx, ""))
	}
	if err != nil {
		return Node{}, nil, err
	}
	n = NodeOf(a.cfg.Project, inst)
	n.Name = name
	a.Remember(n)
	return n, inst, nil
}

// lookup fetches name from Config.Zone when set; else from
// Config.DefaultZone first, then from cachedZone, else searches every zone.
func (a *Access) lookup(ctx context.Context, c *gce.Client, cachedZone, name string) (*gce.Instance, error) {
	if a.cfg.Zone != "" {
		return c.Instance(ctx, a.cfg.Zone, name)
	}
	if z := a.cfg.DefaultZone; z != "" && z != cachedZone {
		inst, err := c.Instance(ctx, z, name)
		if !gce.IsNotFound(err) {
			return inst, err
		}
		a.cfg.Logf("no instance %s in %s (compute/zone): looking elsewhere", name, z)
	}
	if cachedZone != "" {
		return c.Instance(ctx, cachedZone, name)
	}
	return c.Locate(ctx, name)
}

// cached is the zone cache's unexpired entry for name, when it agrees
// with Config.Zone.
func (a *Access) cached(name string) (Node, bool) {
	if a.cfg.Zones == nil {
		return Node{}, false
	}
	e, ok := a.cfg.Zones.Get(a.cfg.Project, name)
	if !ok || (a.cfg.Zone != "" && a.cfg.Zone != e.Zone) {
		return Node{}, false
	}
	return Node{Project: a.cfg.Project, Zone: e.Zone, Name: name, ID: e.ID}, true
}

// Remember stores where nodes live, for nodes found in a listing, with
// one write per project. Best effort: a cache that cannot be written only
// costs a lookup next time.
func (a *Access) Remember(nodes ...Node) {
	if a.cfg.Zones == nil || a.cfg.DryRun {
		return
	}
	byProject := map[string]map[string]gce.CacheEntry{}
	for _, n := range nodes {
		if byProject[n.Project] == nil {
			byProject[n.Project] = map[string]gce.CacheEntry{}
		}
		byProject[n.Project][n.Name] = gce.CacheEntry{Zone: n.Zone, ID: n.ID}
	}
	for project, entries := range byProject {
		a.cfg.Zones.PutAll(project, entries)
	}
}

// Forget drops n from the zone cache. Call it when the API or the relay
// says the instance does not exist where n says it is.
func (a *Access) Forget(n Node) {
	if a.cfg.Zones != nil && !a.cfg.DryRun {
		a.cfg.Zones.Drop(n.Project, n.Name) // best effort: a stale entry only costs a lookup
	}
}
