package gce

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/gkessh/gkessh/internal/atomicfile"
)

// DefaultCacheTTL is how long a cached zone is trusted. Instances do not
// move between zones; the TTL only bounds how long a deleted and recreated
// instance can be served a stale id before its entry is refreshed.
const DefaultCacheTTL = 24 * time.Hour

// CacheEntry is where a named instance lives.
type CacheEntry struct {
	Zone    string    `json:"zone"`
	ID      uint64    `json:"id,string"`
	Expires time.Time `json:"expires"`
}

// Cache remembers instance name → zone and id on disk, one JSON file per
// project, so that a warm `gkessh proxy` makes no API call. The zero TTL
// means DefaultCacheTTL; a nil Now means time.Now.
//
// Concurrent writers each rewrite the whole file atomically (temp file and
// rename), so readers never see a torn file; the last writer wins, and an
// entry lost that way only costs one more lookup. A file that does not parse
// is treated as empty and replaced on the next Put.
type Cache struct {
	Dir string
	TTL time.Duration
	Now func() time.Time
	// ReadOnly makes Put and Drop write nothing, for a dry run.
	ReadOnly bool
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// file is the project's cache file; PathEscape keeps domain-scoped project
// names ("example.com:proj") and anything odd inside Dir.
func (c *Cache) file(project string) string {
	return filepath.Join(c.Dir, "zones-"+url.PathEscape(project)+".json")
}

// Get returns the unexpired entry for name in project.
func (c *Cache) Get(project, name string) (CacheEntry, bool) {
	e, ok := c.load(project)[name]
	if !ok || !c.now().Before(e.Expires) {
		return CacheEntry{}, false
	}
	return e, true
}

// Put stores where name lives, expiring after the TTL, and drops expired
// entries while rewriting the file.
func (c *Cache) Put(project, name, zone string, id uint64) error {
	return c.PutAll(project, map[string]CacheEntry{name: {Zone: zone, ID: id}})
}

// PutAll is Put for many instances (name → zone and id; Expires is set
// here) in one rewrite of the file, for a listing: a Put each would
// rewrite a file of N entries N times.
func (c *Cache) PutAll(project string, entries map[string]CacheEntry) error {
	ttl := c.TTL
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	expires := c.now().Add(ttl)
	return c.modify(project, func(m map[string]CacheEntry) {
		for name, e := range entries {
			e.Expires = expires
			m[name] = e
		}
	})
}

// Drop forgets name, for when the cached zone turned out wrong.
func (c *Cache) Drop(project, name string) error {
	return c.modify(project, func(m map[string]CacheEntry) { delete(m, name) })
}

func (c *Cache) modify(project string, change func(map[string]CacheEntry)) error {
	if c.ReadOnly {
		return nil
	}
	m := c.load(project)
	now := c.now()
	for k, e := range m {
		if !now.Before(e.Expires) {
			delete(m, k)
		}
	}
	change(m)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("gce: encode zone cache: %w", err)
	}
	if err := atomicfile.WriteFile(c.file(project), append(b, '\n'), atomicfile.Options{}); err != nil {
		return fmt.Errorf("gce: zone cache: %w", err)
	}
	return nil
}

func (c *Cache) load(project string) map[string]CacheEntry {
	b, err := os.ReadFile(c.file(project))
	if err != nil {
		return map[string]CacheEntry{}
	}
	return parseCache(b)
}

// parseCache decodes a cache file, keeping only complete entries. Anything
// it cannot decode counts as an empty cache: the cache is only a shortcut.
func parseCache(b []byte) map[string]CacheEntry {
	var m map[string]CacheEntry
	if json.Unmarshal(b, &m) != nil || m == nil {
		return map[string]CacheEntry{}
	}
	for k, e := range m {
		if k == "" || e.Zone == "" || e.ID == 0 {
			delete(m, k)
		}
	}
	return m
}

// Names lists the unexpired instance names cached for any project, sorted,
// for shell completion: it reads only the cache files, never the API.
func (c *Cache) Names() []string {
	files, _ := filepath.Glob(filepath.Join(c.Dir, "zones-*.json"))
	seen := map[string]bool{}
	var names []string
	now := c.now()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for name, e := range parseCache(b) {
			if now.Before(e.Expires) && !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	return names
}
