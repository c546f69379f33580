//go:build unix

package emulator

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// What `gcloud compute ssh --troubleshoot` reads besides Compute and the
// testIamPermissions of iam.go, from the emulator's state: Service Usage
// (is an API enabled; enable it), Cloud Monitoring (the node's CPU
// utilization) and Network Management (connectivity.go). Only the fields
// the troubleshooter reads are served. These APIs answer errors as
// google.rpc.Status JSON, not Compute's error shape.

// troubleState is the state these APIs answer from; its zero value is
// ready.
type troubleState struct {
	mu       sync.Mutex
	services map[string]bool    // enabled or not, by service name; absent: defaultServices
	cpu      map[string]float64 // CPU utilization (0-1) by nodeKey; absent: defaultCPU
	tests    map[string]*connectivityTest
}

// defaultServices are the APIs a project that runs GKE has enabled. The
// Network Management API is not among them, as on a new project, so
// gcloud's troubleshooter enables it.
var defaultServices = []string{
	"compute.googleapis.com", "container.googleapis.com", "oslogin.googleapis.com", "iap.googleapis.com",
	"iam.googleapis.com", "iamcredentials.googleapis.com", "cloudresourcemanager.googleapis.com",
	"serviceusage.googleapis.com", "monitoring.googleapis.com", "logging.googleapis.com",
}

// defaultCPU is a node's CPU utilization until SetCPU says otherwise.
const defaultCPU = 0.05

// ServiceEnabled reports whether the project has the API enabled.
func (s *Server) ServiceEnabled(service string) bool {
	s.trouble.mu.Lock()
	defer s.trouble.mu.Unlock()
	if on, ok := s.trouble.services[service]; ok {
		return on
	}
	return slices.Contains(defaultServices, service)
}

// SetServices enables or disables APIs on the project.
func (s *Server) SetServices(on map[string]bool) {
	s.trouble.mu.Lock()
	defer s.trouble.mu.Unlock()
	if s.trouble.services == nil {
		s.trouble.services = map[string]bool{}
	}
	for k, v := range on {
		s.trouble.services[k] = v
	}
}

// ctlSetServices enables and disables APIs on the project: a JSON object
// from service name to true or false.
func (s *Server) ctlSetServices(r *http.Request) (any, *apiError) {
	var on map[string]bool
	if err := decodeBody(r, &on); err != nil {
		return nil, err
	}
	s.SetServices(on)
	return nil, nil
}

// SetCPU sets the CPU utilization (0 to 1) Cloud Monitoring reports for
// the node while it runs.
func (n *Node) SetCPU(u float64) {
	s := n.srv
	s.trouble.mu.Lock()
	defer s.trouble.mu.Unlock()
	if s.trouble.cpu == nil {
		s.trouble.cpu = map[string]float64{}
	}
	s.trouble.cpu[nodeKey(n.Zone, n.Name)] = u
}

func (s *Server) nodeCPU(n *Node) float64 {
	s.trouble.mu.Lock()
	defer s.trouble.mu.Unlock()
	if u, ok := s.trouble.cpu[nodeKey(n.Zone, n.Name)]; ok {
		return u
	}
	return defaultCPU
}

// rpcCaller returns the grant of r's token for project, or writes the
// 401 or 403 Google gives and returns nil. With service, the API must be
// enabled on the project too.
func (s *Server) rpcCaller(w http.ResponseWriter, r *http.Request, project, service string) *grant {
	s.apiCalls.Add(1)
	g := s.bearerGrant(r)
	switch {
	case g == nil:
		writeStatus(w, http.StatusUnauthorized, "UNAUTHENTICATED", msgUnauthenticated)
		return nil
	case !g.projects[project] || project != s.cfg.Project:
		writeStatus(w, http.StatusForbidden, "PERMISSION_DENIED", "The caller does not have permission")
		return nil
	case service != "" && !s.ServiceEnabled(service):
		consumer := fmt.Sprintf("projects/%d", s.project.ID)
		writeStatus(w, http.StatusForbidden, "PERMISSION_DENIED",
			fmt.Sprintf("%s has not been used in project %d before or it is disabled. Enable it by visiting "+
				"https://console.developers.google.com/apis/api/%s/overview?project=%d then retry.", service, s.project.ID, service, s.project.ID),
			newErrorInfo("SERVICE_DISABLED", map[string]string{"service": service, "consumer": consumer}))
		return nil
	}
	return g
}

// rpcRequire writes Google's 403 and reports false unless g holds perm.
func rpcRequire(w http.ResponseWriter, g *grant, perm, resource string) bool {
	if g.can(perm) {
		return true
	}
	writeStatus(w, http.StatusForbidden, "PERMISSION_DENIED",
		fmt.Sprintf("Permission '%s' denied on resource '%s' (or it may not exist).", perm, resource))
	return false
}

// serveServiceUsage serves Service Usage v1 services.get and
// services.enable:
//
//	GET  /v1/projects/P/services/SERVICE
//	POST /v1/projects/P/services/SERVICE:enable
func (s *Server) serveServiceUsage(w http.ResponseWriter, r *http.Request) {
	project, svc := r.PathValue("project"), r.PathValue("service")
	g := s.rpcCaller(w, r, project, "serviceusage.googleapis.com")
	if g == nil {
		return
	}
	name, enable := svc, false
	if r.Method == http.MethodPost {
		if name, enable = strings.CutSuffix(svc, ":enable"); !enable {
			writeStatus(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("The emulator does not serve %s %s", r.Method, r.URL.Path))
			return
		}
	}
	resource := fmt.Sprintf("projects/%s/services/%s", project, name)
	perm := "serviceusage.services.get"
	if enable {
		perm = "serviceusage.services.enable"
	}
	if !rpcRequire(w, g, perm, resource) {
		return
	}
	if enable {
		s.SetServices(map[string]bool{name: true})
	}
	state := "DISABLED"
	if s.ServiceEnabled(name) {
		state = "ENABLED"
	}
	parent := fmt.Sprintf("projects/%d", s.project.ID)
	service := map[string]any{"name": parent + "/services/" + name, "parent": parent, "state": state,
		"config": map[string]any{"name": name}}
	if !enable {
		writeJSON(w, http.StatusOK, service)
		return
	}
	// Enabling is quick enough here to be done when answered, as Google's
	// is for an API already on.
	service["@type"] = "type.googleapis.com/google.api.serviceusage.v1.Service"
	writeJSON(w, http.StatusOK, map[string]any{"name": "operations/acat.p2-" + randomHex(8), "done": true,
		"response": map[string]any{"@type": "type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse", "service": service}})
}

// cpuFilter is the one Monitoring filter served: the troubleshooter's.
var cpuFilter = regexp.MustCompile(`^\s*metric\.type\s*=\s*"([^"]*)"\s+AND\s+metric\.label\.instance_name\s*=\s*"([^"]*)"\s*$`)

const cpuMetric = "compute.googleapis.com/instance/cpu/utilization"

// serveTimeSeries serves Cloud Monitoring v3 projects.timeSeries.list for
// compute.googleapis.com/instance/cpu/utilization of one instance by name:
// a point a minute over the interval while the node runs, at its CPU
// utilization (SetCPU); none while it is stopped.
//
//	GET /v3/projects/P/timeSeries?filter=…&interval.startTime=…&interval.endTime=…
func (s *Server) serveTimeSeries(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	g := s.rpcCaller(w, r, project, "monitoring.googleapis.com")
	if g == nil || !rpcRequire(w, g, "monitoring.timeSeries.list", "projects/"+project) {
		return
	}
	q := r.URL.Query()
	end, err := time.Parse(time.RFC3339Nano, q.Get("interval.endTime"))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Field interval.endTime had an invalid value")
		return
	}
	start := end
	if v := q.Get("interval.startTime"); v != "" {
		if start, err = time.Parse(time.RFC3339Nano, v); err != nil || start.After(end) {
			writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Field interval.startTime had an invalid value")
			return
		}
	}
	m := cpuFilter.FindStringSubmatch(q.Get("filter"))
	if m == nil {
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("The emulator serves only the filter "+
			`metric.type = "%s" AND metric.label.instance_name = "NAME", not %q`, cpuMetric, q.Get("filter")))
		return
	}
	series := []any{}
	for _, n := range s.nodeList() {
		if m[1] != cpuMetric || n.Name != m[2] || n.Info().Status != "RUNNING" {
			continue
		}
		u := s.nodeCPU(n)
		var points []any // newest first, as Monitoring lists them
		for t := end.Truncate(time.Minute); !t.Before(start); t = t.Add(-time.Minute) {
			at := t.UTC().Format(time.RFC3339)
			points = append(points, map[string]any{"interval": map[string]string{"startTime": at, "endTime": at},
				"value": map[string]float64{"doubleValue": u}})
		}
		if len(points) == 0 {
			continue
		}
		series = append(series, map[string]any{
			"metric":     map[string]any{"type": cpuMetric, "labels": map[string]string{"instance_name": n.Name}},
			"resource":   map[string]any{"type": "gce_instance", "labels": map[string]string{"project_id": s.cfg.Project, "instance_id": fmt.Sprint(n.ID), "zone": n.Zone}},
			"metricKind": "GAUGE", "valueType": "DOUBLE", "points": points,
		})
	}
	out := map[string]any{"unit": "10^2.%"}
	if len(series) > 0 {
		out["timeSeries"] = series
	}
	writeJSON(w, http.StatusOK, out)
}
