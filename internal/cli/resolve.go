package cli

import (
	"context"
	"fmt"

	"github.com/gkessh/gkessh/gce"
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
func (o globalOptions) resolve(ctx context.Context, node string) (resolved, error) {
	r, _, err := o.locate(ctx, node, nil)
	return r, err
}

// instance is resolve for commands that read the instance's metadata: it
// always fetches the instance, with c, and stores its zone in the cache.
func (o globalOptions) instance(ctx context.Context, c *gce.Client, node string) (resolved, *gce.Instance, error) {
	return o.locate(ctx, node, c)
}

// locate does resolve and instance. With c nil a cache hit returns at once
// and a client is built only on a miss; with c the instance is fetched from
// the cached zone, and a cached zone that turns out wrong is dropped and the
// node looked up again.
func (o globalOptions) locate(ctx context.Context, node string, c *gce.Client) (resolved, *gce.Instance, error) {
	if node == "" {
		return resolved{}, nil, usagef("no node given")
	}
	// The name and zone go into API paths, the cache and messages.
	if err := gce.CheckName(node); err != nil {
		return resolved{}, nil, usagef("%v", err)
	}
	if o.Zone != "" {
		if err := gce.CheckZone(o.Zone); err != nil {
			return resolved{}, nil, usagef("--zone: %v", err)
		}
	}
	project, err := o.project()
	if err != nil {
		return resolved{}, nil, err
	}
	r := resolved{Project: project, Name: node}
	cache, cacheErr := gce.DefaultCache()
	if cacheErr == nil {
		if e, ok := cache.Get(project, node); ok && (o.Zone == "" || o.Zone == e.Zone) {
			r.Zone, r.ID = e.Zone, e.ID
			if c == nil {
				return r, nil, nil
			}
		}
	}
	if c == nil {
		if c, err = o.compute(ctx); err != nil {
			return resolved{}, nil, err
		}
	}
	inst, err := lookup(ctx, c, r.Zone, o.Zone, node)
	if err != nil && r.Zone != "" && gce.IsNotFound(err) {
		// The cached zone is stale: the instance was deleted or
		// recreated elsewhere. Forget it and search again.
		o.forget(r)
		inst, err = lookup(ctx, c, "", o.Zone, node)
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
func (o globalOptions) forget(r resolved) {
	if cache, err := gce.DefaultCache(); err == nil {
		cache.Drop(r.Project, r.Name) // best effort: a stale entry only costs a lookup
	}
}

// String is r as PROJECT/ZONE/NAME, for messages.
func (r resolved) String() string { return fmt.Sprintf("%s/%s/%s", r.Project, r.Zone, r.Name) }
