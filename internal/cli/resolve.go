package cli

import (
	"context"
	"fmt"

	"github.com/gkessh/gkessh/internal/gce"
)

// resolved is where a node lives: enough to open a tunnel (Project, Zone,
// Name) and to pin its host keys (ID, for HostKeyAlias compute.ID).
type resolved struct {
	Project string
	Zone    string
	Name    string
	ID      uint64
}

// resolve finds node's zone and id, cheapest first: the on-disk cache (with
// --zone it must agree), then one instances.get when --zone is given, else
// one aggregatedList. A cache hit makes no API call and builds no client, so
// a warm ProxyCommand start costs nothing but reading one small file.
func (d *deps) resolve(ctx context.Context, g globalOptions, node string) (resolved, error) {
	r, _, err := d.locate(ctx, g, node, nil)
	return r, err
}

// instance is resolve for commands that read the instance's metadata: it
// always fetches the instance, with c, and stores its zone in the cache.
func (d *deps) instance(ctx context.Context, g globalOptions, c *gce.Client, node string) (resolved, *gce.Instance, error) {
	return d.locate(ctx, g, node, c)
}

// locate does resolve and instance. With c nil a cache hit returns at once
// and a client is built only on a miss; with c the instance is fetched from
// the cached zone, and a cached zone that turns out wrong is dropped and the
// node looked up again.
func (d *deps) locate(ctx context.Context, g globalOptions, node string, c *gce.Client) (resolved, *gce.Instance, error) {
	if node == "" {
		return resolved{}, nil, usagef("no node given")
	}
	// The name and zone go into API paths, the cache and messages.
	if err := gce.CheckName(node); err != nil {
		return resolved{}, nil, usagef("%v", err)
	}
	if g.Zone != "" {
		if err := gce.CheckZone(g.Zone); err != nil {
			return resolved{}, nil, usagef("--zone: %v", err)
		}
	}
	project, err := d.project(g)
	if err != nil {
		return resolved{}, nil, err
	}
	r := resolved{Project: project, Name: node}
	cache, cacheErr := d.zoneCache()
	if cacheErr == nil {
		if e, ok := cache.Get(project, node); ok && (g.Zone == "" || g.Zone == e.Zone) {
			r.Zone, r.ID = e.Zone, e.ID
			if c == nil {
				return r, nil, nil
			}
		}
	}
	if c == nil {
		if c, err = d.compute(ctx, g); err != nil {
			return resolved{}, nil, err
		}
	}
	inst, err := lookup(ctx, c, r.Zone, g.Zone, node)
	if err != nil && r.Zone != "" && gce.IsNotFound(err) {
		// The cached zone is stale: the instance was deleted or
		// recreated elsewhere. Forget it and search again.
		d.forget(r)
		inst, err = lookup(ctx, c, "", g.Zone, node)
	}
	if err != nil {
		return resolved{}, nil, err
	}
	r.Zone, r.ID = gce.ZoneName(inst.Zone), inst.Id
	if cacheErr == nil {
		// Best effort: a cache that cannot be written only costs a
		// lookup next time.
		cache.Put(project, node, r.Zone, r.ID)
	}
	return r, inst, nil
}

// lookup fetches node from cachedZone, else from --zone, else searches every
// zone.
func lookup(ctx context.Context, c *gce.Client, cachedZone, flagZone, node string) (*gce.Instance, error) {
	switch {
	case cachedZone != "":
		return c.Instance(ctx, cachedZone, node)
	case flagZone != "":
		return c.Instance(ctx, flagZone, node)
	}
	return c.Locate(ctx, node)
}

// forget drops r from the zone cache. Call it when the API or the relay says
// the instance does not exist where r says it is.
func (d *deps) forget(r resolved) {
	if cache, err := d.zoneCache(); err == nil {
		cache.Drop(r.Project, r.Name) // best effort: a stale entry only costs a lookup
	}
}

// String is r as PROJECT/ZONE/NAME, for messages.
func (r resolved) String() string { return fmt.Sprintf("%s/%s/%s", r.Project, r.Zone, r.Name) }
