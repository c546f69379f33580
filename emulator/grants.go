//go:build unix

package emulator

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Grant is what one bearer token may do, as IAM would decide it: whom it
// speaks for, until when, on which projects, with which permissions.
type Grant struct {
	// Principal is the identity behind the token, such as
	// "alice@example.com" or a service account's e-mail; stats and
	// logs record it.
	Principal string `json:"principal,omitempty"`
	// Expiry is when the token stops working; zero means never.
	Expiry time.Time `json:"expiry,omitzero"`
	// Projects the token may use at all; others get 403.
	Projects []string `json:"projects"`
	// Permissions are IAM permission names such as
	// "compute.instances.setMetadata"; nil means every permission (a
	// project owner), an empty list none beyond reading.
	Permissions []string `json:"permissions"`
}

// grant is a Grant prepared for lookups.
type grant struct {
	Grant
	projects map[string]bool
	perms    map[string]bool // nil: every permission
}

func newGrant(g Grant) *grant {
	ng := &grant{Grant: g, projects: map[string]bool{}}
	for _, p := range g.Projects {
		ng.projects[p] = true
	}
	if g.Permissions != nil {
		ng.perms = map[string]bool{}
		for _, p := range g.Permissions {
			ng.perms[p] = true
		}
	}
	return ng
}

// can reports whether the grant holds the IAM permission perm.
func (g *grant) can(perm string) bool { return g.perms == nil || g.perms[perm] }

// live reports whether the token still works at now.
func (g *grant) live(now time.Time) bool { return g.Expiry.IsZero() || now.Before(g.Expiry) }

// AddGrant makes token a bearer token with grant g, replacing any earlier one.
func (s *Server) AddGrant(token string, g Grant) {
	s.mu.Lock()
	s.tokens[token] = newGrant(g)
	s.mu.Unlock()
}

// AddToken makes token a valid bearer token that may use the given projects
// with every permission; with none, every call with it gets 403.
func (s *Server) AddToken(token string, projects ...string) {
	s.AddGrant(token, Grant{Projects: projects})
}

// bearerGrant returns the live grant of r's bearer token, or nil.
func (s *Server) bearerGrant(r *http.Request) *grant {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return nil
	}
	s.mu.Lock()
	g := s.tokens[tok]
	s.mu.Unlock()
	if g == nil || !g.live(time.Now()) {
		return nil
	}
	return g
}

type grantKey struct{}

// requestGrant returns the grant serveCompute found for r.
func requestGrant(r *http.Request) *grant {
	g, _ := r.Context().Value(grantKey{}).(*grant)
	return g
}

// withGrant returns r carrying g for the Compute handlers.
func withGrant(r *http.Request, g *grant) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), grantKey{}, g))
}

// require returns GCE's 403 unless r's token holds perm on resource (a
// path such as "projects/p/zones/z/instances/i").
func require(r *http.Request, perm, resource string) *apiError {
	if g := requestGrant(r); g != nil && g.can(perm) {
		return nil
	}
	return permissionDenied(perm, resource)
}

// permissionDenied is GCE's 403 for a caller without perm on resource.
func permissionDenied(perm, resource string) *apiError {
	return &apiError{http.StatusForbidden, "forbidden",
		fmt.Sprintf("Required '%s' permission for '%s'", perm, resource)}
}
