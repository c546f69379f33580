package gce

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	c := &Cache{Dir: filepath.Join(t.TempDir(), "gkessh"), TTL: time.Hour, Now: func() time.Time { return now }}
	if _, ok := c.Get("p", "n1"); ok {
		t.Fatal("hit in an empty cache")
	}
	if err := c.Put("p", "n1", "us-west1-a", 42); err != nil {
		t.Fatal(err)
	}
	if err := c.Put("example.com:p/x", "n1", "us-west1-b", 43); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		project, node string
		at            time.Duration
		wantZone      string // "" = miss
	}{
		{"hit", "p", "n1", 0, "us-west1-a"},
		{"other project", "example.com:p/x", "n1", 0, "us-west1-b"},
		{"other node", "p", "n2", 0, ""},
		{"just before expiry", "p", "n1", time.Hour - time.Second, "us-west1-a"},
		{"expired", "p", "n1", time.Hour, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := now.Add(tt.at)
			c := *c
			c.Now = func() time.Time { return at }
			e, ok := c.Get(tt.project, tt.node)
			if ok != (tt.wantZone != "") || e.Zone != tt.wantZone {
				t.Fatalf("Get = %+v, %v; want zone %q", e, ok, tt.wantZone)
			}
		})
	}
	if err := c.Drop("p", "n1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("p", "n1"); ok {
		t.Fatal("dropped entry still there")
	}
	st, err := os.Stat(c.file("p"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("cache file mode %v, want 0600", st.Mode())
	}
	if entries, _ := os.ReadDir(c.Dir); len(entries) != 2 {
		t.Fatalf("want one file per project and no temporary files, got %v", entries)
	}
}

func TestCacheSurvivesCorruption(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	for _, junk := range []string{"", "{", "null", "[]", `{"n1":{"zone":"z"}}`, `{"n1":"x"}`, "\x00\xff"} {
		if err := os.WriteFile(c.file("p"), []byte(junk), 0o600); err != nil {
			t.Fatal(err)
		}
		if e, ok := c.Get("p", "n1"); ok {
			t.Fatalf("%q: got entry %+v from a corrupt file", junk, e)
		}
		if err := c.Put("p", "n2", "z", 7); err != nil {
			t.Fatalf("%q: Put over a corrupt file: %v", junk, err)
		}
		if e, ok := c.Get("p", "n2"); !ok || e.Zone != "z" || e.ID != 7 {
			t.Fatalf("%q: after Put, Get = %+v, %v", junk, e, ok)
		}
	}
}

func FuzzParseCache(f *testing.F) {
	f.Add([]byte(`{"n1":{"zone":"us-west1-a","id":"42","expires":"2026-05-01T00:00:00Z"}}`))
	f.Add([]byte(`{"":{"zone":"z","id":"1"}}`))
	f.Add([]byte(`{"n":{"id":"18446744073709551616"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for name, e := range parseCache(b) {
			if name == "" || e.Zone == "" || e.ID == 0 {
				t.Fatalf("incomplete entry kept: %q %+v", name, e)
			}
		}
	})
}

// TestCachePutAll: a listing's nodes go in with one write, next to the
// entries already there, each with the TTL from now.
func TestCachePutAll(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	c := &Cache{Dir: t.TempDir(), TTL: time.Hour, Now: func() time.Time { return now }}
	if err := c.Put("p", "old", "us-west1-a", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.PutAll("p", map[string]CacheEntry{"n1": {Zone: "us-west1-b", ID: 2}, "n2": {Zone: "us-west1-c", ID: 3}}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]CacheEntry{"old": {"us-west1-a", 1, now.Add(time.Hour)}, "n1": {"us-west1-b", 2, now.Add(time.Hour)}, "n2": {"us-west1-c", 3, now.Add(time.Hour)}} {
		if e, ok := c.Get("p", name); !ok || e != want {
			t.Errorf("%s: %+v, %v; want %+v", name, e, ok, want)
		}
	}
}
