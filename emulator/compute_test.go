//go:build unix

package emulator

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/gkessh/gkessh/internal/testkey"
)

func TestComputeProjectGet(t *testing.T) {
	srv, hs := newTestServer(t, Config{Project: "p1", Nodes: 1})
	svc := computeClient(t, hs, srv.Token())
	p, err := svc.Projects.Get("p1").Do()
	if err != nil {
		t.Fatalf("projects.get: %v", err)
	}
	if p.Name != "p1" || p.Id == 0 || p.CommonInstanceMetadata == nil || p.CommonInstanceMetadata.Fingerprint == "" {
		t.Errorf("project = %+v, want name p1, an id and a metadata fingerprint", p)
	}
	if p.SelfLink != "https://www.googleapis.com/compute/v1/projects/p1" {
		t.Errorf("selfLink = %s", p.SelfLink)
	}
	if got := srv.Stats().APICalls; got != 1 {
		t.Errorf("apiCalls = %d, want 1", got)
	}
}

// metadataTarget is project or instance metadata, read and set through the
// official client.
type metadataTarget struct {
	name string
	get  func(svc *compute.Service) (*compute.Metadata, error)
	set  func(svc *compute.Service, md *compute.Metadata) (*compute.Operation, error)
	wait func(svc *compute.Service, op string) (*compute.Operation, error)
}

func metadataTargets(project, zone, instance string) []metadataTarget {
	return []metadataTarget{
		{
			name: "project",
			get: func(svc *compute.Service) (*compute.Metadata, error) {
				p, err := svc.Projects.Get(project).Do()
				if err != nil {
					return nil, err
				}
				return p.CommonInstanceMetadata, nil
			},
			set: func(svc *compute.Service, md *compute.Metadata) (*compute.Operation, error) {
				return svc.Projects.SetCommonInstanceMetadata(project, md).Do()
			},
			wait: func(svc *compute.Service, op string) (*compute.Operation, error) {
				return svc.GlobalOperations.Wait(project, op).Do()
			},
		},
		{
			name: "instance",
			get: func(svc *compute.Service) (*compute.Metadata, error) {
				in, err := svc.Instances.Get(project, zone, instance).Do()
				if err != nil {
					return nil, err
				}
				return in.Metadata, nil
			},
			set: func(svc *compute.Service, md *compute.Metadata) (*compute.Operation, error) {
				return svc.Instances.SetMetadata(project, zone, instance, md).Do()
			},
			wait: func(svc *compute.Service, op string) (*compute.Operation, error) {
				return svc.ZoneOperations.Wait(project, zone, op).Do()
			},
		},
	}
}

func item(k, v string) *compute.MetadataItems { return &compute.MetadataItems{Key: k, Value: &v} }

func TestComputeSetMetadata(t *testing.T) {
	big := strings.Repeat("x", maxMetadataValueLen)
	cases := []struct {
		name        string
		conflicts   int                     // injected 412s before the call
		fingerprint func(cur string) string // what the request carries
		items       []*compute.MetadataItems
		code        int // 0: success
		reason      string
	}{
		{name: "current fingerprint", fingerprint: same, items: []*compute.MetadataItems{item("ssh-keys", "a:ssh-ed25519 AAAA a")}},
		{name: "same items again", fingerprint: same, items: nil},
		{name: "fingerprint not base64", fingerprint: func(cur string) string { return cur + "!" }, code: 412, reason: "conditionNotMet"},
		{name: "stale fingerprint", fingerprint: func(string) string { return "Vm9SEZQeWH0=" }, code: 412, reason: "conditionNotMet"},
		{name: "missing fingerprint", fingerprint: func(string) string { return "" }, code: 412, reason: "conditionNotMet"},
		{name: "injected conflict", conflicts: 1, fingerprint: same, code: 412, reason: "conditionNotMet"},
		{name: "bad key", fingerprint: same, items: []*compute.MetadataItems{item("ssh keys", "x")}, code: 400, reason: "invalid"},
		{name: "key too long", fingerprint: same, items: []*compute.MetadataItems{item(strings.Repeat("k", 128), "x")}, code: 400, reason: "invalid"},
		{name: "longest key", fingerprint: same, items: []*compute.MetadataItems{item(strings.Repeat("k", 127), "x")}},
		{name: "duplicate key", fingerprint: same, items: []*compute.MetadataItems{item("a", "1"), item("a", "2")}, code: 400, reason: "invalid"},
		{name: "value too long", fingerprint: same, items: []*compute.MetadataItems{item("a", big+"x")}, code: 400, reason: "invalid"},
		{name: "largest value", fingerprint: same, items: []*compute.MetadataItems{item("a", big)}},
		{name: "total too large", fingerprint: same, items: []*compute.MetadataItems{item("a", big), item("b", big), item("c", "x")}, code: 400, reason: "invalid"},
	}
	srv, hs := newTestServer(t, Config{Nodes: 1})
	node := srv.Node(srv.Nodes()[0])
	svc := computeClient(t, hs, srv.Token())
	for _, target := range metadataTargets(srv.ProjectName(), node.Zone, node.Name) {
		for _, tc := range cases {
			t.Run(target.name+"/"+tc.name, func(t *testing.T) {
				before, err := target.get(svc)
				if err != nil {
					t.Fatal(err)
				}
				writes := srv.Stats().MetadataWrites
				srv.SetFaults(Faults{MetadataConflicts: tc.conflicts})
				op, err := target.set(svc, &compute.Metadata{Fingerprint: tc.fingerprint(before.Fingerprint), Items: tc.items})
				after, gerr := target.get(svc)
				if gerr != nil {
					t.Fatal(gerr)
				}
				if tc.code != 0 {
					wantAPIError(t, err, tc.code, tc.reason)
					if tc.code == 412 && !strings.Contains(err.Error(), "Supplied fingerprint does not match current metadata fingerprint.") {
						t.Errorf("412 message = %v", err)
					}
					if a, b := mustJSON(t, before), mustJSON(t, after); a != b {
						t.Errorf("metadata changed by a failed set:\nbefore %s\nafter  %s", a, b)
					}
					if got := srv.Stats().MetadataWrites; got != writes {
						t.Errorf("metadataWrites = %d, want %d", got, writes)
					}
					return
				}
				if err != nil {
					t.Fatalf("set: %v", err)
				}
				if op.Status != "RUNNING" {
					t.Errorf("set returned an operation %s, want RUNNING", op.Status)
				}
				done, err := target.wait(svc, op.Name)
				if err != nil || done.Status != "DONE" {
					t.Fatalf("wait = %+v, %v; want DONE", done, err)
				}
				if after.Fingerprint == before.Fingerprint {
					t.Errorf("fingerprint %s did not change", after.Fingerprint)
				}
				if a, b := mustJSON(t, after.Items), mustJSON(t, tc.items); a != b && len(tc.items) > 0 {
					t.Errorf("items = %.200s, want %.200s", a, b)
				}
				if got := srv.Stats().MetadataWrites; got != writes+1 {
					t.Errorf("metadataWrites = %d, want %d", got, writes+1)
				}
			})
		}
	}
}

func same(cur string) string { return cur }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestComputeInjectedConflictsCountDown(t *testing.T) {
	srv, hs := newTestServer(t, Config{})
	svc := computeClient(t, hs, srv.Token())
	srv.SetFaults(Faults{MetadataConflicts: 2})
	for i, want := range []int{412, 412, 0} {
		p, err := svc.Projects.Get(srv.ProjectName()).Do()
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.Projects.SetCommonInstanceMetadata(srv.ProjectName(), p.CommonInstanceMetadata).Do()
		if want == 0 {
			if err != nil {
				t.Fatalf("attempt %d: %v, want success", i, err)
			}
			continue
		}
		wantAPIError(t, err, want, "conditionNotMet")
	}
}

func TestComputeAuth(t *testing.T) {
	srv, hs := newTestServer(t, Config{Project: "p1", Nodes: 1})
	srv.AddToken("powerless")
	cases := []struct {
		name, token, project string
		code                 int
		reason               string
	}{
		{"no token", "", "p1", 401, "required"},
		{"unknown token", "nope", "p1", 401, "authError"},
		{"no permission", "powerless", "p1", 403, "forbidden"},
		{"other project", srv.Token(), "p2", 403, "forbidden"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := computeClient(t, hs, tc.token).Projects.Get(tc.project).Do()
			wantAPIError(t, err, tc.code, tc.reason)
		})
	}
	if got := srv.Stats().APICalls; got != int64(len(cases)) {
		t.Errorf("apiCalls = %d, want %d: refused calls count too", got, len(cases))
	}
}

func TestComputeInstances(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 3})
	svc := computeClient(t, hs, srv.Token())
	p := srv.ProjectName()
	name, zone := gkeNodeName(1)

	in, err := svc.Instances.Get(p, zone, name).Do()
	if err != nil {
		t.Fatalf("instances.get: %v", err)
	}
	if in.Name != name || in.Id != srv.Node(name).ID || in.Status != "RUNNING" ||
		in.Zone != "https://www.googleapis.com/compute/v1/projects/"+p+"/zones/"+zone ||
		in.Labels["goog-k8s-cluster-name"] != "cluster" ||
		!strings.HasPrefix(in.NetworkInterfaces[0].NetworkIP, "10.128.") ||
		len(in.ServiceAccounts) != 1 || !in.Disks[0].Boot {
		t.Errorf("instance = %s", mustJSON(t, in))
	}
	_, err = svc.Instances.Get(p, "us-west1-c", name).Do()
	gerr := wantAPIError(t, err, 404, "notFound")
	if want := "The resource 'projects/" + p + "/zones/us-west1-c/instances/" + name + "' was not found"; gerr.Message != want {
		t.Errorf("404 message = %q, want %q", gerr.Message, want)
	}

	list, err := svc.Instances.List(p, "us-west1-a").Do()
	if err != nil {
		t.Fatalf("instances.list: %v", err)
	}
	if len(list.Items) != 2 {
		t.Errorf("us-west1-a has %d instances, want 2", len(list.Items))
	}
}

func TestComputeAggregatedList(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 3})
	svc := computeClient(t, hs, srv.Token())
	name, zone := gkeNodeName(2)
	cases := []struct {
		filter string
		want   int
	}{
		{"name eq ^" + name + "$", 1},
		{`name = "` + name + `"`, 1},
		{"name = " + name, 1},
		{`(name = "` + name + `") AND (status = "RUNNING")`, 1},
		{"name eq gke-cluster-.*", 3},
		{"name ne " + name, 2},
		{"name != " + name, 2},
		{"name eq gke", 0},
		{"status eq TERMINATED", 0},
		{"", 3},
	}
	for _, tc := range cases {
		t.Run(tc.filter, func(t *testing.T) {
			var found []*compute.Instance
			err := svc.Instances.AggregatedList(srv.ProjectName()).Filter(tc.filter).MaxResults(500).
				Pages(context.Background(), func(l *compute.InstanceAggregatedList) error {
					for scope, sl := range l.Items {
						if len(sl.Instances) == 0 && (sl.Warning == nil || sl.Warning.Code != "NO_RESULTS_ON_PAGE") {
							t.Errorf("empty scope %s has no NO_RESULTS_ON_PAGE warning", scope)
						}
						found = append(found, sl.Instances...)
					}
					return nil
				})
			if err != nil {
				t.Fatalf("aggregatedList: %v", err)
			}
			if len(found) != tc.want {
				t.Fatalf("found %d instances, want %d", len(found), tc.want)
			}
			if tc.want == 1 && (found[0].Name != name || !strings.HasSuffix(found[0].Zone, "/zones/"+zone)) {
				t.Errorf("found %s in %s, want %s in %s", found[0].Name, found[0].Zone, name, zone)
			}
		})
	}
	_, err := svc.Instances.AggregatedList(srv.ProjectName()).Filter("name ~ x").Do()
	wantAPIError(t, err, 400, "invalid")
}

func TestComputeGuestAttributes(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 2})
	svc := computeClient(t, hs, srv.Token())
	p := srv.ProjectName()
	hostKey := testkey.Public(t)
	withKeys, withoutKeys := srv.Node(srv.Nodes()[0]), srv.Node(srv.Nodes()[1])
	useFakeSSHD(t, withKeys, hostKey)
	useFakeSSHD(t, withoutKeys)

	ga, err := svc.Instances.GetGuestAttributes(p, withKeys.Zone, withKeys.Name).QueryPath("hostkeys/").Do()
	if err != nil {
		t.Fatalf("getGuestAttributes: %v", err)
	}
	want := []*compute.GuestAttributesEntry{{Namespace: "hostkeys", Key: "ssh-ed25519", Value: base64.StdEncoding.EncodeToString(hostKey.Marshal())}}
	if ga.QueryPath != "hostkeys/" || ga.QueryValue == nil || mustJSON(t, ga.QueryValue.Items) != mustJSON(t, want) {
		t.Errorf("guest attributes = %s, want items %s", mustJSON(t, ga), mustJSON(t, want))
	}
	ga, err = svc.Instances.GetGuestAttributes(p, withKeys.Zone, withKeys.Name).VariableKey("hostkeys/ssh-ed25519").Do()
	if err != nil || ga.VariableValue != want[0].Value {
		t.Errorf("variableKey hostkeys/ssh-ed25519 = %+v, %v", ga, err)
	}

	_, err = svc.Instances.GetGuestAttributes(p, withoutKeys.Zone, withoutKeys.Name).QueryPath("hostkeys/").Do()
	gerr := wantAPIError(t, err, 404, "notFound")
	if !strings.Contains(gerr.Message, "The resource 'hostkeys/' of type 'Guest Attribute' was not found.") {
		t.Errorf("404 message = %q, want gcloud's no-host-keys text", gerr.Message)
	}

	// Guest attributes off on the instance: the guest could publish nothing.
	if err := srv.SetInstanceMetadata(withKeys.Name, map[string]*string{"enable-guest-attributes": ptr("FALSE")}); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Instances.GetGuestAttributes(p, withKeys.Zone, withKeys.Name).QueryPath("hostkeys/").Do()
	wantAPIError(t, err, 404, "notFound")

	// The guestAttributesStatus fault: any answer but the 404, for clients
	// to get through; 0 ends it.
	for _, tc := range []struct {
		status int
		reason string
	}{{403, "forbidden"}, {500, "backendError"}, {503, "backendError"}} {
		if code := ctl(t, hs, "POST", "/control/faults", Faults{GuestAttributesStatus: tc.status}, nil); code != 200 {
			t.Fatalf("fault %d: control answered %d", tc.status, code)
		}
		_, err = svc.Instances.GetGuestAttributes(p, withoutKeys.Zone, withoutKeys.Name).QueryPath("hostkeys/").Do()
		wantAPIError(t, err, tc.status, tc.reason)
	}
	if code := ctl(t, hs, "POST", "/control/faults", Faults{GuestAttributesStatus: 404}, nil); code != 400 {
		t.Errorf("fault 404: control answered %d, want 400", code)
	}
	ctl(t, hs, "POST", "/control/faults", Faults{}, nil)
	_, err = svc.Instances.GetGuestAttributes(p, withoutKeys.Zone, withoutKeys.Name).QueryPath("hostkeys/").Do()
	wantAPIError(t, err, 404, "notFound")
}

func TestComputeOperations(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 1})
	svc := computeClient(t, hs, srv.Token())
	p := srv.ProjectName()
	n := srv.Node(srv.Nodes()[0])
	in, err := svc.Instances.Get(p, n.Zone, n.Name).Do()
	if err != nil {
		t.Fatal(err)
	}
	op, err := svc.Instances.SetMetadata(p, n.Zone, n.Name, in.Metadata).Do()
	if err != nil {
		t.Fatal(err)
	}
	if op.Zone == "" || op.TargetId != n.ID || !strings.HasSuffix(op.TargetLink, "/instances/"+n.Name) {
		t.Errorf("operation = %s", mustJSON(t, op))
	}
	got, err := svc.ZoneOperations.Get(p, n.Zone, op.Name).Do()
	if err != nil || got.Status != "DONE" {
		t.Errorf("zoneOperations.get = %+v, %v; want DONE", got, err)
	}
	_, err = svc.ZoneOperations.Get(p, "us-west1-c", op.Name).Do()
	wantAPIError(t, err, 404, "notFound")
	_, err = svc.GlobalOperations.Get(p, op.Name).Do()
	wantAPIError(t, err, 404, "notFound")

	pr, err := svc.Projects.Get(p).Do()
	if err != nil {
		t.Fatal(err)
	}
	gop, err := svc.Projects.SetCommonInstanceMetadata(p, pr.CommonInstanceMetadata).Do()
	if err != nil {
		t.Fatal(err)
	}
	if gop.Zone != "" || !strings.Contains(gop.SelfLink, "/global/operations/") {
		t.Errorf("global operation = %s", mustJSON(t, gop))
	}
	got, err = svc.GlobalOperations.Get(p, gop.Name).Do()
	if err != nil || got.Status != "DONE" {
		t.Errorf("globalOperations.get = %+v, %v; want DONE", got, err)
	}
}

func TestComputeUnknownPath(t *testing.T) {
	srv, hs := newTestServer(t, Config{})
	req, err := http.NewRequest("DELETE", hs.URL+"/compute/v1/projects/"+srv.ProjectName(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct {
			Code   int
			Errors []struct{ Reason string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 404 || body.Error.Code != 404 || body.Error.Errors[0].Reason != "notFound" {
		t.Errorf("got %d %+v, want a Google 404 body", resp.StatusCode, body)
	}
}

// TestComputeGrants: a token's permissions decide each metadata write, with
// GCE's 403 naming the permission and resource, and an expired token is 401.
func TestComputeGrants(t *testing.T) {
	srv, hs := newTestServer(t, Config{Project: "p1", Nodes: 1})
	node := srv.Nodes()[0]
	zone := srv.Node(node).Zone
	srv.AddGrant("instance-only", Grant{Principal: "ops@example.com", Projects: []string{"p1"},
		Permissions: []string{"compute.instances.setMetadata", "iam.serviceAccounts.actAs"}})
	srv.AddGrant("no-actas", Grant{Projects: []string{"p1"}, Permissions: []string{"compute.instances.setMetadata"}})
	srv.AddGrant("project-only", Grant{Projects: []string{"p1"},
		Permissions: []string{"compute.projects.setCommonInstanceMetadata"}})
	srv.AddGrant("expired", Grant{Projects: []string{"p1"}, Expiry: time.Now().Add(-time.Second)})
	setProject := func(svc *compute.Service) error {
		p, err := computeClient(t, hs, srv.Token()).Projects.Get("p1").Do()
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.Projects.SetCommonInstanceMetadata("p1", p.CommonInstanceMetadata).Do()
		return err
	}
	setInstance := func(svc *compute.Service) error {
		inst, err := computeClient(t, hs, srv.Token()).Instances.Get("p1", zone, node).Do()
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.Instances.SetMetadata("p1", zone, node, inst.Metadata).Do()
		return err
	}
	cases := []struct {
		token   string
		set     func(*compute.Service) error
		code    int
		message string
	}{
		{"instance-only", setInstance, 0, ""},
		{"instance-only", setProject, 403, "Required 'compute.projects.setCommonInstanceMetadata' permission for 'projects/p1'"},
		{"project-only", setProject, 0, ""},
		{"project-only", setInstance, 403, "Required 'compute.instances.setMetadata' permission for 'projects/p1/zones/" + zone + "/instances/" + node + "'"},
		{"no-actas", setInstance, 403, "Required 'iam.serviceAccounts.actAs' permission for 'projects/p1/serviceAccounts/"},
		{"expired", setProject, 401, ""},
	}
	for _, tc := range cases {
		err := tc.set(computeClient(t, hs, tc.token))
		if tc.code == 0 {
			if err != nil {
				t.Errorf("%s: %v, want success", tc.token, err)
			}
			continue
		}
		reason := "forbidden"
		if tc.code == 401 {
			reason = "authError"
		}
		if e := wantAPIError(t, err, tc.code, reason); e != nil && !strings.Contains(e.Message, tc.message) {
			t.Errorf("%s: message %q, want %q", tc.token, e.Message, tc.message)
		}
	}
}

// TestFingerprintIsBytes: a metadata fingerprint is a bytes field, which
// Google's JSON takes in standard or URL-safe base64, padded or not; gcloud
// sends it back URL-safe (before, a spurious 412 on every fingerprint
// with + or /). Each form of the current fingerprint is
// accepted, on the project and on an instance.
func TestFingerprintIsBytes(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 1})
	node := srv.Node(srv.Nodes()[0])
	svc := computeClient(t, hs, srv.Token())
	forms := map[string]func(string) string{
		"URL-safe": func(fp string) string { return strings.NewReplacer("+", "-", "/", "_").Replace(fp) },
		"URL-safe unpadded": func(fp string) string {
			return strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(fp), "=")
		},
		"unpadded": func(fp string) string { return strings.TrimRight(fp, "=") },
	}
	for _, target := range metadataTargets(srv.ProjectName(), node.Zone, node.Name) {
		for name, form := range forms {
			t.Run(target.name+"/"+name, func(t *testing.T) {
				// Change the metadata until its fingerprint has a + or a /,
				// where the forms differ from what was served.
				var cur *compute.Metadata
				for i := 0; ; i++ {
					var err error
					if cur, err = target.get(svc); err != nil {
						t.Fatal(err)
					}
					if strings.ContainsAny(cur.Fingerprint, "+/") {
						break
					}
					if i == 200 {
						t.Fatalf("no fingerprint with + or / in %d changes", i)
					}
					v := fmt.Sprint(i)
					if target.name == "project" {
						srv.SetProjectMetadata(map[string]*string{"filler": &v})
					} else {
						srv.SetInstanceMetadata(node.Name, map[string]*string{"filler": &v})
					}
				}
				sent := form(cur.Fingerprint)
				if _, err := target.set(svc, &compute.Metadata{Fingerprint: sent, Items: cur.Items}); err != nil {
					t.Errorf("set with fingerprint %q (served %q): %v", sent, cur.Fingerprint, err)
				}
			})
		}
	}
}

// TestAPIRateLimit: with Faults.APIRate the Compute API takes that many
// calls a second (a second's worth at once) and answers the rest as
// Google does when a project's rate quota is spent: 429, status
// RESOURCE_EXHAUSTED, reason rateLimitExceeded, an ErrorInfo
// RATE_LIMIT_EXCEEDED; stats count them. Without the fault no call is
// refused.
func TestAPIRateLimit(t *testing.T) {
	srv, hs := newTestServer(t, Config{})
	get := func() (int, []byte) {
		req, _ := http.NewRequest("GET", hs.URL+"/compute/v1/projects/"+srv.ProjectName(), nil)
		req.Header.Set("Authorization", "Bearer "+srv.Token())
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	for range 20 {
		if code, _ := get(); code != 200 {
			t.Fatalf("no limit set: %d", code)
		}
	}
	srv.SetFaults(Faults{APIRate: 5})
	srv.ResetStats()
	var ok, limited int
	var body []byte
	start := time.Now()
	for i := 0; limited < 3 && i < 1000; i++ {
		switch code, b := get(); code {
		case 200:
			ok++
		case 429:
			limited, body = limited+1, b
		default:
			t.Fatalf("status %d: %s", code, b)
		}
	}
	// The 5 saved up, and 5 a second since: never more, however slow the
	// machine.
	most := 5 + int(time.Since(start).Seconds()*5) + 1
	if ok < 5 || ok > most || limited != 3 || srv.Stats().RateLimited != 3 {
		t.Errorf("%d ok, %d refused (stats %d); want 5 to %d ok, then 3 refused", ok, limited, srv.Stats().RateLimited, most)
	}
	var e struct {
		Error struct {
			Code    int
			Message string
			Status  string
			Errors  []struct{ Domain, Reason string }
			Details []struct {
				Type   string `json:"@type"`
				Reason string
			}
		}
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatal(err)
	}
	if e.Error.Code != 429 || e.Error.Status != "RESOURCE_EXHAUSTED" || len(e.Error.Errors) != 1 ||
		e.Error.Errors[0].Reason != "rateLimitExceeded" || len(e.Error.Details) != 1 ||
		e.Error.Details[0].Reason != "RATE_LIMIT_EXCEEDED" || !strings.Contains(e.Error.Message, "Quota exceeded") {
		t.Errorf("429 body %s", body)
	}
}
