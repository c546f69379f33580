//go:build unix

package emulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// selfLinkBase is where GCE's selfLinks point, whatever endpoint served them.
const selfLinkBase = "https://www.googleapis.com/compute/v1/"

// GCE's metadata limits (cloud.google.com/compute/docs/reference/rest/v1/Metadata).
const (
	maxMetadataKeyLen   = 128       // a key must be shorter than this
	maxMetadataValueLen = 256 << 10 // bytes in one value
	maxMetadataTotal    = 512 << 10 // bytes in all keys and values together
)

var metadataKeyRE = regexp.MustCompile(`^[a-zA-Z0-9-_]+$`)

// defaultZones always exist, so that aggregatedList shows empty zones the
// way a real region does.
var defaultZones = []string{"us-west1-a", "us-west1-b", "us-west1-c"}

// computeRoutes maps the Compute API methods the emulator serves.
func (s *Server) computeRoutes() *http.ServeMux {
	m := http.NewServeMux()
	route := func(pattern string, h func(*http.Request) (any, *apiError)) {
		m.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			v, err := h(r)
			if err != nil {
				s.cfg.Logf("compute %s %s: %d %s", r.Method, r.URL.Path, err.code, err.message)
				writeAPIError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, v)
		})
	}
	const p = "/compute/v1/projects/{project}"
	route("GET "+p, s.getProject)
	route("POST "+p+"/setCommonInstanceMetadata", s.setProjectMetadata)
	route("GET "+p+"/aggregated/instances", s.aggregatedListInstances)
	route("GET "+p+"/zones/{zone}/instances", s.listInstances)
	route("GET "+p+"/zones/{zone}/instances/{instance}", s.getInstance)
	route("POST "+p+"/zones/{zone}/instances/{instance}/setMetadata", s.setInstanceMetadata)
	route("GET "+p+"/zones/{zone}/instances/{instance}/getGuestAttributes", s.getGuestAttributes)
	route("GET "+p+"/zones/{zone}/instances/{instance}/getEffectiveFirewalls", s.getEffectiveFirewalls)
	route("GET "+p+"/zones/{zone}/instances/{instance}/serialPort", s.getSerialPortOutput)
	route("POST "+p+"/zones/{zone}/instances/{instance}/testIamPermissions", s.testInstancePermissions)
	route("GET "+p+"/global/firewalls", s.listFirewalls)
	route("GET "+p+"/global/networks/{network}", s.getNetwork)
	// Operations finish before their set call returns, so get and wait agree.
	route("GET "+p+"/zones/{zone}/operations/{operation}", s.getOperation)
	route("POST "+p+"/zones/{zone}/operations/{operation}/wait", s.getOperation)
	route("GET "+p+"/global/operations/{operation}", s.getOperation)
	route("POST "+p+"/global/operations/{operation}/wait", s.getOperation)
	return m
}

// serveCompute serves the Compute API subset: it counts the call, checks the
// bearer token, then routes with the token's grant in the request context.
func (s *Server) serveCompute(w http.ResponseWriter, r *http.Request) {
	s.apiCalls.Add(1)
	if rate := s.Faults().APIRate; !s.quota.allow(rate, time.Now()) {
		s.rateLimited.Add(1)
		s.cfg.Logf("compute %s %s: 429 over the API rate", r.Method, r.URL.Path)
		s.writeRateLimited(w, rate)
		return
	}
	g, err := s.authorize(r)
	if err != nil {
		s.cfg.Logf("compute %s %s: %d %s", r.Method, r.URL.Path, err.code, err.message)
		writeAPIError(w, err)
		return
	}
	if _, pattern := s.compute.Handler(r); pattern == "" {
		writeAPIError(w, &apiError{http.StatusNotFound, "notFound",
			fmt.Sprintf("The emulator does not serve %s %s", r.Method, r.URL.Path)})
		return
	}
	s.compute.ServeHTTP(w, withGrant(r, g))
}

// authorize checks the bearer token: missing, unknown or expired → 401, no
// access to the project in the path → 403, a project that does not exist
// → 404.
func (s *Server) authorize(r *http.Request) (*grant, *apiError) {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || tok == "" {
		return nil, errLoginRequired
	}
	project, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/compute/v1/projects/"), "/")
	g := s.bearerGrant(r)
	switch {
	case g == nil:
		return nil, errInvalidCredentials
	case !g.projects[project]:
		return nil, &apiError{http.StatusForbidden, "forbidden",
			fmt.Sprintf("Required permission on 'projects/%s' is missing: the caller does not have permission", project)}
	case project != s.cfg.Project:
		return nil, notFound("projects/" + project)
	}
	return g, nil
}

func (s *Server) projectURL() string { return selfLinkBase + "projects/" + s.cfg.Project }

func (s *Server) zoneURL(zone string) string { return s.projectURL() + "/zones/" + zone }

func (s *Server) getProject(*http.Request) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &compute.Project{
		Kind:                   "compute#project",
		Id:                     s.project.ID,
		Name:                   s.project.Name,
		SelfLink:               s.projectURL(),
		CommonInstanceMetadata: cloneMetadata(&s.project.Metadata),
		DefaultServiceAccount:  s.serviceAccount(),
		DefaultNetworkTier:     "PREMIUM",
		XpnProjectStatus:       "UNSPECIFIED_XPN_PROJECT_STATUS",
	}, nil
}

// serviceAccount is the project's default compute service account, which
// GKE nodes run as.
func (s *Server) serviceAccount() string {
	return fmt.Sprintf("%d-compute@developer.gserviceaccount.com", s.project.ID)
}

func (s *Server) setProjectMetadata(r *http.Request) (any, *apiError) {
	req, err := metadataRequest(r, "compute.projects.setCommonInstanceMetadata", "projects/"+s.cfg.Project)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.replaceMetadata(r, &s.project.Metadata, req); err != nil {
		return nil, err
	}
	return s.newOperation("", s.projectURL(), s.project.ID), nil
}

func (s *Server) setInstanceMetadata(r *http.Request) (any, *apiError) {
	resource := fmt.Sprintf("projects/%s/zones/%s/instances/%s", s.cfg.Project, r.PathValue("zone"), r.PathValue("instance"))
	req, err := metadataRequest(r, "compute.instances.setMetadata", resource)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.lookupNode(r)
	if err != nil {
		return nil, err
	}
	// Setting metadata on a VM that runs as a service account needs
	// actAs on it too (the account's code reads the metadata).
	if err := require(r, "iam.serviceAccounts.actAs", "projects/"+s.cfg.Project+"/serviceAccounts/"+s.serviceAccount()); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.changed()
	if err := s.replaceMetadata(r, &n.metadata, req); err != nil {
		return nil, err
	}
	return s.newOperation(n.Zone, s.zoneURL(n.Zone)+"/instances/"+n.Name, n.ID), nil
}

// metadataRequest checks that the caller has perm on resource and reads
// the set-metadata request's body.
func metadataRequest(r *http.Request, perm, resource string) (*compute.Metadata, *apiError) {
	if err := require(r, perm, resource); err != nil {
		return nil, err
	}
	var req compute.Metadata
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	return &req, nil
}

// decodeBody reads a JSON request body into v.
func decodeBody(r *http.Request, v any) *apiError {
	// Generous: 512 KiB of metadata may grow sixfold as JSON escapes.
	body := http.MaxBytesReader(nil, r.Body, 4<<20)
	if err := json.NewDecoder(body).Decode(v); err != nil {
		return &apiError{http.StatusBadRequest, "parseError", fmt.Sprintf("Invalid JSON payload received. %v", err)}
	}
	return nil
}

// replaceMetadata applies a set request to cur the way GCE does: the limits
// hold, the fingerprint matches, then the whole item list is replaced, and
// the write counts against r's caller. Call with s.mu held (and Node.mu for
// instance metadata).
func (s *Server) replaceMetadata(r *http.Request, cur, req *compute.Metadata) *apiError {
	if err := validateMetadata(req.Items); err != nil {
		return err
	}
	if s.faults.MetadataConflicts > 0 {
		s.faults.MetadataConflicts--
		return errFingerprint
	}
	if !sameFingerprint(req.Fingerprint, cur.Fingerprint) {
		return errFingerprint
	}
	s.writeMetadata(cur, req.Items)
	s.metadataWrites.Add(1)
	s.countBy("write", requestGrant(r))
	return nil
}

// writeMetadata replaces cur's items, changes its fingerprint and wakes the
// guest agents. Call with s.mu held (and Node.mu for instance metadata).
func (s *Server) writeMetadata(cur *compute.Metadata, items []*compute.MetadataItems) {
	cur.Items = cloneItems(items)
	cur.Fingerprint = fingerprint(cur)
	s.metadataChanged()
}

// validateMetadata enforces GCE's limits on a metadata item list.
func validateMetadata(items []*compute.MetadataItems) *apiError {
	seen := map[string]bool{}
	total := 0
	for i, it := range items {
		if it == nil {
			return invalid("Invalid value for field 'resource.items[%d]': null.", i)
		}
		if !metadataKeyRE.MatchString(it.Key) || len(it.Key) >= maxMetadataKeyLen {
			return invalid("Invalid value for field 'resource.items[%d].key': '%s'. "+
				"Must be a match of regex '[a-zA-Z0-9-_]+' and shorter than %d bytes.", i, clip(it.Key), maxMetadataKeyLen)
		}
		if seen[it.Key] {
			return invalid("Invalid value for field 'resource.items[%d].key': '%s'. Duplicate keys are not allowed.", i, it.Key)
		}
		seen[it.Key] = true
		v := valueOf(it)
		if len(v) > maxMetadataValueLen {
			return invalid("Invalid value for field 'resource.items[%d].value': '%s'. "+
				"Value is %d bytes, more than the limit of %d bytes.", i, clip(v), len(v), maxMetadataValueLen)
		}
		total += len(it.Key) + len(v)
	}
	if total > maxMetadataTotal {
		return invalid("Invalid value for field 'resource.items': metadata is %d bytes, more than the limit of %d bytes.",
			total, maxMetadataTotal)
	}
	return nil
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func valueOf(it *compute.MetadataItems) string {
	if it.Value == nil {
		return ""
	}
	return *it.Value
}

// metadataValue returns the value of key in md and whether it is set.
func metadataValue(md *compute.Metadata, key string) (string, bool) {
	for _, it := range md.Items {
		if it.Key == key {
			return valueOf(it), true
		}
	}
	return "", false
}

func cloneItems(items []*compute.MetadataItems) []*compute.MetadataItems {
	out := make([]*compute.MetadataItems, len(items))
	for i, it := range items {
		out[i] = &compute.MetadataItems{Key: it.Key, Value: it.Value}
	}
	return out
}

func cloneMetadata(md *compute.Metadata) *compute.Metadata {
	return &compute.Metadata{Kind: "compute#metadata", Fingerprint: md.Fingerprint, Items: cloneItems(md.Items)}
}

// newOperation records a finished setMetadata operation on a target (zonal
// when zone is set, else global) and returns it as still RUNNING, so that
// clients must wait on it as they do on GCE. Call with s.mu held.
func (s *Server) newOperation(zone, targetLink string, targetID uint64) *compute.Operation {
	now := time.Now()
	name := fmt.Sprintf("operation-%d-%s", now.UnixMilli(), randomHex(8))
	scope := s.projectURL() + "/global"
	if zone != "" {
		scope = s.zoneURL(zone)
	}
	op := &compute.Operation{
		Kind:          "compute#operation",
		Id:            s.newID(),
		Name:          name,
		OperationType: "setMetadata",
		TargetLink:    targetLink,
		TargetId:      targetID,
		Status:        "DONE",
		Progress:      100,
		InsertTime:    now.Format(time.RFC3339Nano),
		StartTime:     now.Format(time.RFC3339Nano),
		EndTime:       now.Format(time.RFC3339Nano),
		SelfLink:      scope + "/operations/" + name,
	}
	if zone != "" {
		op.Zone = scope
	}
	s.ops[name] = op
	running := *op
	running.Status, running.Progress, running.EndTime = "RUNNING", 0, ""
	running.ForceSendFields = []string{"Progress"}
	return &running
}

// getOperation serves zoneOperations and globalOperations get and wait.
func (s *Server) getOperation(r *http.Request) (any, *apiError) {
	zone, name := r.PathValue("zone"), r.PathValue("operation")
	scope := "projects/" + s.cfg.Project + "/global"
	if zone != "" {
		scope = "projects/" + s.cfg.Project + "/zones/" + zone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	op := s.ops[name]
	if op == nil || (zone == "" && op.Zone != "") || (zone != "" && op.Zone != s.zoneURL(zone)) {
		return nil, notFound(scope + "/operations/" + name)
	}
	done := *op
	return &done, nil
}

// lookupNode finds the instance named in the request's path; call with s.mu held.
func (s *Server) lookupNode(r *http.Request) (*Node, *apiError) {
	zone, name := r.PathValue("zone"), r.PathValue("instance")
	n := s.nodes[nodeKey(zone, name)]
	if n == nil {
		return nil, notFound(fmt.Sprintf("projects/%s/zones/%s/instances/%s", s.cfg.Project, zone, name))
	}
	return n, nil
}

func (s *Server) getInstance(r *http.Request) (any, *apiError) {
	s.mu.Lock()
	n, err := s.lookupNode(r)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return rawJSON(s.instance(n).line), nil
}

// instance renders a node as a GKE node's Compute instance, or returns it
// as rendered since it last changed.
func (s *Server) instance(n *Node) *renderedInstance {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.rendered == nil {
		res := s.renderInstance(n)
		n.rendered = &renderedInstance{res: res, line: append(mustMarshal(res), '\n')}
	}
	return n.rendered
}

// renderInstance renders a node as a GKE node's Compute instance; call
// with n.mu held.
func (s *Server) renderInstance(n *Node) *compute.Instance {
	zoneURL := s.zoneURL(n.Zone)
	region := n.Zone[:max(strings.LastIndex(n.Zone, "-"), 0)]
	return &compute.Instance{
		Kind:        "compute#instance",
		Id:          n.ID,
		Name:        n.Name,
		Zone:        zoneURL,
		Status:      n.status,
		SelfLink:    zoneURL + "/instances/" + n.Name,
		MachineType: zoneURL + "/machineTypes/e2-medium",
		Labels:      maps.Clone(n.labels),
		Metadata:    cloneMetadata(&n.metadata),
		Tags:        instanceTags(n),
		NetworkInterfaces: []*compute.NetworkInterface{{
			Kind:       "compute#networkInterface",
			Name:       "nic0",
			Network:    s.projectURL() + "/global/networks/default",
			Subnetwork: s.projectURL() + "/regions/" + region + "/subnetworks/default",
			NetworkIP:  n.ip,
			StackType:  "IPV4_ONLY",
		}},
		ServiceAccounts: []*compute.ServiceAccount{{
			Email:  s.serviceAccount(),
			Scopes: []string{"https://www.googleapis.com/auth/cloud-platform"},
		}},
		Disks: []*compute.AttachedDisk{{
			Kind:       "compute#attachedDisk",
			Type:       "PERSISTENT",
			Mode:       "READ_WRITE",
			Boot:       true,
			AutoDelete: true,
			DeviceName: "persistent-disk-0",
			Interface:  "SCSI",
			Source:     zoneURL + "/disks/" + n.Name,
			DiskSizeGb: 100,
			GuestOsFeatures: []*compute.GuestOsFeature{
				{Type: "VIRTIO_SCSI_MULTIQUEUE"}, {Type: "SEV_CAPABLE"}, {Type: "UEFI_COMPATIBLE"}, {Type: "GVNIC"},
			},
		}},
	}
}

// zones lists the zones that exist: the defaults and those with nodes.
func (s *Server) zones() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	zones := slices.Clone(defaultZones)
	for _, n := range s.nodes {
		zones = append(zones, n.Zone)
	}
	slices.Sort(zones)
	return slices.Compact(zones)
}

// instancesIn renders the nodes in zone that pass the filter, sorted by
// name, and adds their encodings to enc.
func (s *Server) instancesIn(zone string, f filterExpr, enc instanceJSON) []*compute.Instance {
	var out []*compute.Instance
	for _, n := range s.nodeList() {
		if n.Zone != zone {
			continue
		}
		if ri := s.instance(n); f == nil || f.eval(ri.object()) {
			out = append(out, ri.res)
			enc.add(ri)
		}
	}
	return out
}

// maxResults is GCE's default and largest page of a list call: "Acceptable
// values are 0 to 500, inclusive. (Default: 500)".
const maxResults = 500

// page reads a list request's maxResults and pageToken: the page size (a
// larger one is cut to maxResults, 0 or none is maxResults) and the index
// of the first item. A token is the emulator's own (the index, encoded);
// one it did not issue is GCE's 400.
func page(r *http.Request) (size, start int, err *apiError) {
	q := r.URL.Query()
	size = maxResults
	if v := q.Get("maxResults"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 0 {
			return 0, 0, invalid("Invalid value for field 'maxResults': '%s'. Must be a number from 0 to %d.", v, maxResults)
		}
		if n > 0 {
			size = min(n, maxResults)
		}
	}
	if tok := q.Get("pageToken"); tok != "" {
		b, derr := base64.RawURLEncoding.DecodeString(tok)
		idx, ok := strings.CutPrefix(string(b), "next:")
		n, perr := strconv.Atoi(idx)
		if derr != nil || !ok || perr != nil || n < 0 {
			return 0, 0, invalid("Invalid value for field 'pageToken': '%s'. Invalid page token.", clip(tok))
		}
		start = n
	}
	return size, start, nil
}

// pageToken is the token of the page that starts at item next, or "" when
// there is none after total items.
func pageToken(next, total int) string {
	if next >= total {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte("next:" + strconv.Itoa(next)))
}

func (s *Server) listInstances(r *http.Request) (any, *apiError) {
	zone := r.PathValue("zone")
	if !slices.Contains(s.zones(), zone) {
		return nil, notFound(fmt.Sprintf("projects/%s/zones/%s", s.cfg.Project, zone))
	}
	f, err := parseFilter(r.URL.Query().Get("filter"))
	if err != nil {
		return nil, err
	}
	size, start, err := page(r)
	if err != nil {
		return nil, err
	}
	enc := instanceJSON{}
	all := s.instancesIn(zone, f, enc)
	end := min(start+size, len(all))
	start = min(start, end)
	return enc.list(&compute.InstanceList{
		Kind:          "compute#instanceList",
		Id:            fmt.Sprintf("projects/%s/zones/%s/instances", s.cfg.Project, zone),
		Items:         all[start:end],
		NextPageToken: pageToken(end, len(all)),
		SelfLink:      s.zoneURL(zone) + "/instances",
	}), nil
}

// aggregatedListInstances returns the instances of every zone, zone by
// zone and by name, at most maxResults to a page as GCE pages them; each
// page names every zone, those without an instance on it with GCE's
// NO_RESULTS_ON_PAGE warning.
func (s *Server) aggregatedListInstances(r *http.Request) (any, *apiError) {
	f, err := parseFilter(r.URL.Query().Get("filter"))
	if err != nil {
		return nil, err
	}
	size, start, err := page(r)
	if err != nil {
		return nil, err
	}
	zones := s.zones()
	byZone := map[string][]*compute.Instance{}
	enc := instanceJSON{}
	total := 0
	for _, zone := range zones {
		found := s.instancesIn(zone, f, enc)
		// This page's share of the zone: items [start, start+size) of
		// all zones' instances in order.
		lo, hi := min(max(start-total, 0), len(found)), min(max(start+size-total, 0), len(found))
		byZone[zone] = found[lo:hi]
		total += len(found)
	}
	items := map[string]compute.InstancesScopedList{}
	for _, zone := range zones {
		scope := "zones/" + zone
		if found := byZone[zone]; len(found) > 0 {
			items[scope] = compute.InstancesScopedList{Instances: found}
			continue
		}
		items[scope] = compute.InstancesScopedList{Warning: &compute.InstancesScopedListWarning{
			Code:    "NO_RESULTS_ON_PAGE",
			Message: fmt.Sprintf("There are no results for scope '%s' on this page.", scope),
			Data:    []*compute.InstancesScopedListWarningData{{Key: "scope", Value: scope}},
		}}
	}
	return enc.aggregatedList(&compute.InstanceAggregatedList{
		Kind:          "compute#instanceAggregatedList",
		Id:            fmt.Sprintf("projects/%s/aggregated/instances", s.cfg.Project),
		Items:         items,
		NextPageToken: pageToken(start+size, total),
		SelfLink:      s.projectURL() + "/aggregated/instances",
	}), nil
}

// parseFilter parses a list request's filter (filter.go).
func parseFilter(expr string) (filterExpr, *apiError) {
	f, err := parseListFilter(expr)
	if err != nil {
		return nil, invalid("Invalid value for field 'filter': '%s'. Invalid list filter expression.", expr)
	}
	return f, nil
}

// getGuestAttributes serves the host keys the node's SSH server publishes
// under hostkeys/, as the guest agent does on GCE.
func (s *Server) getGuestAttributes(r *http.Request) (any, *apiError) {
	s.mu.Lock()
	n, err := s.lookupNode(r)
	var enabled bool
	if err == nil {
		n.mu.Lock()
		enabled = guestAttributesEnabled(&n.metadata, &s.project.Metadata)
		n.mu.Unlock()
		err = guestAttributesFault(s.faults.GuestAttributesStatus, "projects/"+s.cfg.Project+"/zones/"+n.Zone+"/instances/"+n.Name)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	path, variable := q.Get("queryPath"), q.Get("variableKey")
	attrNotFound := func(p string) *apiError {
		return &apiError{http.StatusNotFound, "notFound", fmt.Sprintf("The resource '%s' of type 'Guest Attribute' was not found.", p)}
	}
	if variable != "" {
		path = variable
	}
	if !enabled {
		// The guest cannot write attributes, so there are none.
		return nil, attrNotFound(path)
	}
	ns, key, _ := strings.Cut(path, "/")
	var found []*compute.GuestAttributesEntry
	for _, k := range n.HostKeys() {
		e := &compute.GuestAttributesEntry{Namespace: "hostkeys", Key: k.Type(), Value: base64.StdEncoding.EncodeToString(k.Marshal())}
		if (ns == "" || ns == e.Namespace) && (key == "" || key == e.Key) {
			found = append(found, e)
		}
	}
	if len(found) == 0 {
		return nil, attrNotFound(path)
	}
	ga := &compute.GuestAttributes{
		Kind:     "compute#guestAttributes",
		SelfLink: s.zoneURL(n.Zone) + "/instances/" + n.Name + "/guestAttributes/" + path,
	}
	if variable != "" {
		ga.VariableKey, ga.VariableValue = variable, found[0].Value
	} else {
		ga.QueryPath, ga.QueryValue = path, &compute.GuestAttributesValue{Items: found}
	}
	return ga, nil
}

// guestAttributesFault is the error the GuestAttributesStatus fault
// answers for the instance resource, nil for none. The 403 is GCE's for a missing permission; the 500 and 503
// GCE's internal error, reason backendError (its message carries a code
// for Google's support, made up here).
func guestAttributesFault(status int, resource string) *apiError {
	switch status {
	case http.StatusForbidden:
		return permissionDenied("compute.instances.getGuestAttributes", resource)
	case http.StatusInternalServerError, http.StatusServiceUnavailable:
		return &apiError{status, "backendError", "Internal error. Please try again or contact Google Support. (Code: '5F1B2C3D4E5F6.A1B2C3D.E4F5A6B7')"}
	}
	return nil
}

// guestAttributesEnabled reads enable-guest-attributes from the instance,
// else the project.
func guestAttributesEnabled(inst, proj *compute.Metadata) bool {
	return boolAttr("enable-guest-attributes", inst, proj)
}

// boolAttr reads a boolean metadata attribute the way the guest agent does:
// the first of mds (instance, then project) that sets it wins, even with
// false; values parse with strconv.ParseBool and unparsable ones are false.
func boolAttr(key string, mds ...*compute.Metadata) bool {
	for _, md := range mds {
		if v, ok := metadataValue(md, key); ok {
			b, _ := strconv.ParseBool(strings.TrimSpace(v))
			return b
		}
	}
	return false
}
