package suggest

import (
	"slices"
	"testing"
)

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"run", "run", 0},
		{"runn", "run", 1},
		{"rnu", "run", 1}, // a swap is one edit
		{"confg-ssh", "config-ssh", 1},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
		{"né", "ne", 1}, // runes, not bytes
	}
	for _, tt := range tests {
		if got := Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := Distance(tt.b, tt.a); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestNear(t *testing.T) {
	pool := []string{
		"gke-cluster-default-pool-3e89aeb0-5zfg",
		"gke-cluster-default-pool-3e89aeb0-b47k",
		"gke-cluster-default-pool-41ef50b9-b47k",
		"gke-cluster-default-pool-3e89aeb0-b47k", // listed twice (two zones)
	}
	tests := []struct {
		desc  string
		name  string
		names []string
		want  []string
	}{
		{"a character short", "gke-cluster-default-pool-3e89aeb0-b47", pool, []string{"gke-cluster-default-pool-3e89aeb0-b47k"}},
		{"two characters short", "gke-cluster-default-pool-3e89aeb0-b4", pool, []string{"gke-cluster-default-pool-3e89aeb0-b47k"}},
		{"three off is too far", "gke-cluster-default-pool-3e89aeb0-b", pool, nil},
		{"another suffix is too far", "gke-cluster-default-pool-3e89aeb0-xxxx", pool, nil},
		{"nearest first, not in order of name", "node-abcdef", []string{"node-abcdaa", "node-abcdeg"}, []string{"node-abcdeg", "node-abcdaa"}},
		{"eight characters: two edits", "abcdefgh", []string{"abcdefxy"}, []string{"abcdefxy"}},
		{"seven characters: one edit", "abcdefg", []string{"abcdexy", "abcdefx"}, []string{"abcdefx"}},
		{"a one-letter name suggests nothing", "a", []string{"b", "ab", "c"}, nil},
		{"a two-letter name, one edit", "ab", []string{"ac", "abc", "xy"}, []string{"abc", "ac"}},
		{"the name itself is no suggestion", "gke-cluster-default-pool-3e89aeb0-5zfg", pool, nil},
		{"short names: one edit", "vm-3", []string{"vm-1", "vm-2", "vm-10", "web"}, []string{"vm-1", "vm-2"}},
		{"short names: not two", "vx-3", []string{"vm-1"}, nil},
		{"at most three", "node-aaaa", []string{"node-aaab", "node-aaac", "node-aaad", "node-aaae"}, []string{"node-aaab", "node-aaac", "node-aaad"}},
		{"none listed", "x", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := Near(tt.name, tt.names); !slices.Equal(got, tt.want) {
				t.Errorf("Near(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}
