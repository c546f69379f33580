//go:build unix

package emulator

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Network Management v1 connectivity tests, as gcloud compute ssh
// --troubleshoot runs one: from the caller's address to the instance's
// SSH port over TCP. The emulator's verdict is its own reading of the
// instance's state and the firewall rules that apply to it (firewall.go):
// REACHABLE when the instance runs and the rules admit the source to the
// port (or bypassFirewallChecks), else UNREACHABLE. It models no routes,
// so an internal-only node is judged on its firewall alone. Only the
// result is served, no traces.
//
//	POST /v1/projects/P/locations/global/connectivityTests?testId=ID
//	GET  /v1/projects/P/locations/global/connectivityTests/ID
//	GET  /v1/projects/P/locations/global/operations/OP
//	POST /v1/projects/P/locations/global/connectivityTests/*:testIamPermissions (iam.go)

// connectivityTest is a ConnectivityTest as stored and served.
type connectivityTest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Source and Destination are kept as sent, and served back so.
	Source               map[string]any `json:"source"`
	Destination          map[string]any `json:"destination"`
	Protocol             string         `json:"protocol,omitempty"`
	BypassFirewallChecks bool           `json:"bypassFirewallChecks,omitempty"`
	CreateTime           string         `json:"createTime,omitempty"`
	UpdateTime           string         `json:"updateTime,omitempty"`
	ReachabilityDetails  *struct {
		Result     string `json:"result"`
		VerifyTime string `json:"verifyTime"`
	} `json:"reachabilityDetails,omitempty"`
}

const networkManagement = "networkmanagement.googleapis.com"

// serveNetworkManagement serves the connectivity tests' methods under
// /v1/projects/P/locations/global/.
func (s *Server) serveNetworkManagement(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	if strings.HasSuffix(r.URL.Path, ":testIamPermissions") {
		s.serveTestIAM(w, r)
		return
	}
	g := s.rpcCaller(w, r, project, networkManagement)
	if g == nil {
		return
	}
	global := "projects/" + project + "/locations/global"
	rest := strings.TrimPrefix(r.URL.Path, "/v1/"+global+"/")
	kind, id, _ := strings.Cut(rest, "/")
	switch {
	case r.Method == http.MethodPost && kind == "connectivityTests" && id == "":
		if rpcRequire(w, g, "networkmanagement.connectivitytests.create", global) {
			s.createConnectivityTest(w, r, global)
		}
	case r.Method == http.MethodGet && kind == "connectivityTests" && id != "":
		name := global + "/connectivityTests/" + id
		if !rpcRequire(w, g, "networkmanagement.connectivitytests.get", name) {
			return
		}
		if t := s.connectivityTest(name); t != nil {
			writeJSON(w, http.StatusOK, t)
			return
		}
		writeStatus(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("Resource '%s' was not found", name))
	case r.Method == http.MethodGet && kind == "operations" && id != "":
		name := global + "/operations/" + id
		if !rpcRequire(w, g, "networkmanagement.operations.get", name) {
			return
		}
		// A test's operation is named after it, and done once created.
		t := s.connectivityTest(global + "/connectivityTests/" + strings.TrimPrefix(id, "operation-"))
		if t == nil {
			writeStatus(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("Resource '%s' was not found", name))
			return
		}
		writeJSON(w, http.StatusOK, testOperation(name, t, true))
	default:
		writeStatus(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("The emulator does not serve %s %s", r.Method, r.URL.Path))
	}
}

func (s *Server) connectivityTest(name string) *connectivityTest {
	s.trouble.mu.Lock()
	defer s.trouble.mu.Unlock()
	return s.trouble.tests[name]
}

// createConnectivityTest runs the test at once and answers its operation,
// not yet done, as Google does.
func (s *Server) createConnectivityTest(w http.ResponseWriter, r *http.Request, global string) {
	id := r.URL.Query().Get("testId")
	var t connectivityTest
	if err := decodeBody(r, &t); err != nil {
		writeRPCError(w, err)
		return
	}
	if id == "" || strings.Contains(id, "/") {
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid test ID")
		return
	}
	ip, _ := t.Source["ipAddress"].(string)
	instance, _ := t.Destination["instance"].(string)
	src, dst := net.ParseIP(ip), strings.Split(instance, "/")
	if src == nil || len(dst) != 6 || dst[0] != "projects" || dst[2] != "zones" || dst[4] != "instances" {
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "The source needs an IP address and the destination an instance (projects/P/zones/Z/instances/I)")
		return
	}
	port := 80 // Network Management's default destination port
	if p, ok := t.Destination["port"].(float64); ok {
		port = int(p)
	}
	result := "UNREACHABLE"
	n, err := s.findNode(dst[5], dst[3])
	if err == nil && n.Info().Status == "RUNNING" && strings.EqualFold(t.Protocol, "TCP") && (t.BypassFirewallChecks ||
		admits(s.effectiveRules(n), &net.IPNet{IP: src, Mask: net.CIDRMask(len(src)*8, len(src)*8)}, port)) {
		result = "REACHABLE"
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	t.Name = global + "/connectivityTests/" + id
	t.CreateTime, t.UpdateTime = now, now
	t.ReachabilityDetails = &struct {
		Result     string `json:"result"`
		VerifyTime string `json:"verifyTime"`
	}{result, now}
	s.trouble.mu.Lock()
	if s.trouble.tests == nil {
		s.trouble.tests = map[string]*connectivityTest{}
	}
	if s.trouble.tests[t.Name] != nil {
		s.trouble.mu.Unlock()
		writeStatus(w, http.StatusConflict, "ALREADY_EXISTS", fmt.Sprintf("Resource '%s' already exists", t.Name))
		return
	}
	s.trouble.tests[t.Name] = &t
	s.trouble.mu.Unlock()
	writeJSON(w, http.StatusOK, testOperation(global+"/operations/operation-"+id, &t, false))
}

// testOperation is the long-running operation of creating t.
func testOperation(name string, t *connectivityTest, done bool) map[string]any {
	op := map[string]any{"name": name, "done": done, "metadata": map[string]any{
		"@type":      "type.googleapis.com/google.cloud.networkmanagement.v1.OperationMetadata",
		"createTime": t.CreateTime, "target": t.Name, "verb": "create", "cancelRequested": false, "apiVersion": "v1",
	}}
	if done {
		resp := map[string]any{"@type": "type.googleapis.com/google.cloud.networkmanagement.v1.ConnectivityTest"}
		op["response"] = resp
		resp["name"], resp["description"], resp["source"], resp["destination"] = t.Name, t.Description, t.Source, t.Destination
		resp["protocol"], resp["createTime"], resp["updateTime"], resp["reachabilityDetails"] = t.Protocol, t.CreateTime, t.UpdateTime, t.ReachabilityDetails
		if t.BypassFirewallChecks {
			resp["bypassFirewallChecks"] = true
		}
	}
	return op
}
