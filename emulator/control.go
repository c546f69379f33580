package emulator

import (
	"fmt"
	"maps"
	"net/http"
	"slices"

	compute "google.golang.org/api/compute/v1"
)

// controlRoutes maps the control API. (Being written.)
func (s *Server) controlRoutes() *http.ServeMux { return http.NewServeMux() }

// serveControl serves the control API. (Being written.)
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	s.control.ServeHTTP(w, r)
}

// AddToken makes token a valid bearer token that may use the given projects;
// with none, every call with it gets 403.
func (s *Server) AddToken(token string, projects ...string) {
	allowed := map[string]bool{}
	for _, p := range projects {
		allowed[p] = true
	}
	s.mu.Lock()
	s.tokens[token] = allowed
	s.mu.Unlock()
}

// SetInstanceMetadata changes the named node's metadata attributes without a
// fingerprint: a nil value deletes the key. It changes the fingerprint and
// wakes the guest agents, but is not counted as a metadata write.
func (s *Server) SetInstanceMetadata(node string, attrs map[string]*string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[node]
	if n == nil {
		return fmt.Errorf("emulator: no node %s", node)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return s.patchMetadata(&n.metadata, attrs)
}

// SetProjectMetadata is SetInstanceMetadata for the project's metadata.
func (s *Server) SetProjectMetadata(attrs map[string]*string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.patchMetadata(&s.project.Metadata, attrs)
}

// patchMetadata sets or (nil values) deletes attrs in md, keeping the order
// of the keys that stay and appending new ones sorted. Call with s.mu held.
func (s *Server) patchMetadata(md *compute.Metadata, attrs map[string]*string) error {
	var items []*compute.MetadataItems
	for _, it := range md.Items {
		v, patched := attrs[it.Key]
		switch {
		case !patched:
			items = append(items, it)
		case v != nil:
			items = append(items, &compute.MetadataItems{Key: it.Key, Value: v})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		if _, exists := metadataValue(md, k); !exists && attrs[k] != nil {
			items = append(items, &compute.MetadataItems{Key: k, Value: attrs[k]})
		}
	}
	if err := validateMetadata(items); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	s.writeMetadata(md, items)
	return nil
}
