//go:build unix

package emulator

import (
	"fmt"
	"net/http"
	"strings"
)

// testIamPermissions as the five APIs gcloud's troubleshooter asks serve
// it: Compute (instances), Resource Manager v3 (projects), IAM (service
// accounts), IAP (tunnel instances) and Network Management (connectivity
// tests). Each answers from the token's Grant: the asked permissions it
// holds.

// permsRequest is every API's TestIamPermissionsRequest.
type permsRequest struct {
	Permissions []string `json:"permissions"`
}

// permsResponse is every API's TestIamPermissionsResponse: the list is
// left out when no permission is held, as Google's JSON does.
type permsResponse struct {
	Permissions []string `json:"permissions,omitempty"`
}

// held answers a request from r's grant.
func held(r *http.Request, g *grant) (*permsResponse, *apiError) {
	var req permsRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	out := &permsResponse{}
	for _, p := range req.Permissions {
		if g.can(p) {
			out.Permissions = append(out.Permissions, p)
		}
	}
	return out, nil
}

// testInstancePermissions serves compute instances.testIamPermissions.
func (s *Server) testInstancePermissions(r *http.Request) (any, *apiError) {
	s.mu.Lock()
	_, err := s.lookupNode(r)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return held(r, requestGrant(r))
}

// serveTestIAM serves the other APIs' testIamPermissions, whose resource
// names end in ":testIamPermissions":
//
//	POST /v3/projects/P:testIamPermissions                           (Resource Manager)
//	POST /v1/projects/P/serviceAccounts/EMAIL:testIamPermissions     (IAM)
//	POST /v1/projects/P/iap_tunnel/zones/Z/instances/I:testIamPermissions (IAP)
//	POST /v1/projects/P/locations/global/connectivityTests/*:testIamPermissions (Network Management)
//
// Errors use google.rpc.Status JSON, as these APIs do.
func (s *Server) serveTestIAM(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutSuffix(r.URL.Path, ":testIamPermissions")
	rest := strings.TrimPrefix(strings.TrimPrefix(path, "/v3/"), "/v1/")
	parts := strings.Split(rest, "/")
	nm := len(parts) == 6 && parts[2] == "locations" && parts[4] == "connectivityTests"
	known := (strings.HasPrefix(path, "/v3/") && len(parts) == 2) ||
		(len(parts) == 4 && parts[2] == "serviceAccounts") ||
		(len(parts) == 7 && parts[2] == "iap_tunnel" && parts[3] == "zones" && parts[5] == "instances") || nm
	if !ok || parts[0] != "projects" || !known {
		s.apiCalls.Add(1)
		writeStatus(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("The emulator does not serve %s %s", r.Method, r.URL.Path))
		return
	}
	service := ""
	if nm {
		service = networkManagement
	}
	g := s.rpcCaller(w, r, parts[1], service)
	if g == nil {
		return
	}
	out, err := held(r, g)
	if err != nil {
		writeRPCError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
