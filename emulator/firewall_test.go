//go:build unix

package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	compute "google.golang.org/api/compute/v1"
)

func TestFirewallsNetworksEffective(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 2})
	svc := computeClient(t, hs, srv.Token())
	ctx := context.Background()
	c := srv.Clusters()["cluster"]
	if c.Hash == "" || c.PodRange != "10.4.0.0/14" || c.Tag != "gke-cluster-"+c.Hash+"-node" {
		t.Fatalf("cluster = %+v", c)
	}
	list, err := svc.Firewalls.List(srv.ProjectName()).Context(ctx).Do()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*compute.Firewall{}
	for _, fw := range list.Items {
		byName[fw.Name] = fw
	}
	prefix := "gke-cluster-" + c.Hash + "-"
	all := byName[prefix+"all"]
	if all == nil || !slices.Equal(all.SourceRanges, []string{c.PodRange}) || all.Allowed[0].IPProtocol != "tcp" || len(all.Allowed[0].Ports) != 0 ||
		all.Priority != 1000 || all.Direction != "INGRESS" || !slices.Equal(all.TargetTags, []string{c.Tag}) {
		t.Errorf("%sall = %+v", prefix, all)
	}
	if ex := byName[prefix+"exkubelet"]; ex == nil || ex.Denied[0].Ports[0] != "10255" {
		t.Errorf("exkubelet = %+v", ex)
	}
	if in := byName[prefix+"inkubelet"]; in == nil || in.Priority != 999 {
		t.Errorf("inkubelet = %+v", in)
	}
	for _, name := range []string{prefix + "ssh", prefix + "vms", "default-allow-ssh", "allow-ssh-ingress-from-iap"} {
		if byName[name] == nil {
			t.Errorf("no rule %s", name)
		}
	}
	// The wire form carries disabled and priority even when zero/false.
	req, _ := http.NewRequest("GET", hs.URL+"/compute/v1/projects/"+srv.ProjectName()+"/global/firewalls?prettyPrint=false", nil)
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	raw.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(raw.String(), `"disabled":false`) || !strings.Contains(raw.String(), `"kind":"compute#firewallList"`) {
		t.Errorf("firewalls.list body lacks disabled:false or kind: %.300s", raw.String())
	}

	net, err := svc.Networks.Get(srv.ProjectName(), "default").Context(ctx).Do()
	if err != nil || !net.AutoCreateSubnetworks || net.Kind != "compute#network" {
		t.Errorf("networks.get = %+v, %v", net, err)
	}
	_, err = svc.Networks.Get(srv.ProjectName(), "other").Context(ctx).Do()
	wantAPIError(t, err, 404, "notFound")

	// A rule for other tags does not apply; one for the node's tag does.
	if err := srv.PutFirewallRule(&compute.Firewall{Name: "other-tag", TargetTags: []string{"web"}, SourceRanges: []string{"0.0.0.0/0"},
		Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"80"}}}}); err != nil {
		t.Fatal(err)
	}
	node := srv.Node(srv.Nodes()[0])
	eff, err := svc.Instances.GetEffectiveFirewalls(srv.ProjectName(), node.Zone, node.Name, "nic0").Context(ctx).Do()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fw := range eff.Firewalls {
		names = append(names, fw.Name)
	}
	if slices.Contains(names, "other-tag") || !slices.Contains(names, prefix+"all") || !slices.Contains(names, "default-allow-ssh") {
		t.Errorf("effective firewalls = %v", names)
	}
	inst, err := svc.Instances.Get(srv.ProjectName(), node.Zone, node.Name).Context(ctx).Do()
	if err != nil || inst.Tags == nil || !slices.Equal(inst.Tags.Items, []string{c.Tag}) {
		t.Errorf("instance tags = %+v, %v", inst.Tags, err)
	}

	// Permissions per token.
	srv.AddGrant("limited", Grant{Projects: []string{srv.ProjectName()}, Permissions: []string{}})
	limited := computeClient(t, hs, "limited")
	_, err = limited.Firewalls.List(srv.ProjectName()).Context(ctx).Do()
	wantAPIError(t, err, 403, "forbidden")
	_, err = limited.Instances.GetEffectiveFirewalls(srv.ProjectName(), node.Zone, node.Name, "nic0").Context(ctx).Do()
	wantAPIError(t, err, 403, "forbidden")
}

// TestIAPObeysFirewallRules: the relay reaches port 22 only when the
// emulator's own reading of the rules admits IAP's range.
func TestIAPObeysFirewallRules(t *testing.T) {
	srv, _ := newTestServer(t, Config{Nodes: 1})
	tags := []string{srv.Clusters()["cluster"].Tag}
	tcp22 := []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"22"}}}
	for _, tc := range []struct {
		name string
		edit func()
		want bool
	}{
		{"defaults", func() {}, true},
		{"no IAP rule, default-allow-ssh still admits", func() { srv.DeleteFirewallRule("allow-ssh-ingress-from-iap") }, true},
		{"neither", func() { srv.DeleteFirewallRule("default-allow-ssh") }, false},
		{"port range", func() {
			srv.PutFirewallRule(&compute.Firewall{Name: "range", SourceRanges: []string{"35.235.0.0/16"}, Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"20-25"}}}})
		}, true},
		{"a deny of equal priority wins", func() {
			srv.PutFirewallRule(&compute.Firewall{Name: "deny", Priority: 1000, SourceRanges: []string{"0.0.0.0/0"}, Denied: []*compute.FirewallDenied{{IPProtocol: "all"}}})
		}, false},
		{"a higher-priority allow beats the deny", func() {
			srv.PutFirewallRule(&compute.Firewall{Name: "iap-first", Priority: 10, SourceRanges: []string{iapRange}, Allowed: tcp22})
		}, true},
		{"disabled", func() {
			srv.PutFirewallRule(&compute.Firewall{Name: "iap-first", Priority: 10, Disabled: true, SourceRanges: []string{iapRange}, Allowed: tcp22})
		}, false},
		{"other target tag", func() {
			srv.PutFirewallRule(&compute.Firewall{Name: "iap-first", Priority: 10, TargetTags: []string{"web"}, SourceRanges: []string{iapRange}, Allowed: tcp22})
		}, false},
	} {
		tc.edit()
		if got := srv.iapAdmits(tags, 22); got != tc.want {
			t.Errorf("%s: IAP admitted = %v, want %v", tc.name, got, tc.want)
		}
		n := srv.Node(srv.Nodes()[0])
		if addr := n.backendAddr(22); (addr != "") != tc.want {
			t.Errorf("%s: relay backend = %q", tc.name, addr)
		}
	}
}

func TestSerialPortOutput(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 1})
	svc := computeClient(t, hs, srv.Token())
	n := srv.Node(srv.Nodes()[0])
	out, err := svc.Instances.GetSerialPortOutput(srv.ProjectName(), n.Zone, n.Name).Context(context.Background()).Do()
	if err != nil || !strings.Contains(out.Contents, "Linux version") || out.Start != 0 || out.Next != int64(len(out.Contents)) {
		t.Fatalf("serial = %+v, %v", out, err)
	}
	line := "[  512.1] EXT4-fs error (device sda1): No space left on device"
	if err := srv.AppendSerial(n.Name, line); err != nil {
		t.Fatal(err)
	}
	more, err := svc.Instances.GetSerialPortOutput(srv.ProjectName(), n.Zone, n.Name).Start(out.Next).Context(context.Background()).Do()
	if err != nil || more.Contents != "\n"+line || more.Start != out.Next {
		t.Errorf("serial from %d = %+v, %v", out.Next, more, err)
	}
	srv.AddGrant("limited", Grant{Projects: []string{srv.ProjectName()}, Permissions: []string{}})
	_, err = computeClient(t, hs, "limited").Instances.GetSerialPortOutput(srv.ProjectName(), n.Zone, n.Name).Context(context.Background()).Do()
	wantAPIError(t, err, 403, "forbidden")
}

func TestTestIamPermissions(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 1})
	n := srv.Node(srv.Nodes()[0])
	p := srv.ProjectName()
	srv.AddGrant("some", Grant{Projects: []string{p}, Permissions: []string{"compute.instances.get", "iap.tunnelInstances.accessViaIAP", "compute.projects.get"}})
	res, err := computeClient(t, hs, "some").Instances.TestIamPermissions(p, n.Zone, n.Name,
		&compute.TestPermissionsRequest{Permissions: []string{"compute.instances.get", "compute.instances.setMetadata"}}).Context(context.Background()).Do()
	if err != nil || !slices.Equal(res.Permissions, []string{"compute.instances.get"}) {
		t.Errorf("compute testIamPermissions = %+v, %v", res, err)
	}
	post := func(path, token string, perms ...string) (int, string) {
		b, _ := json.Marshal(map[string]any{"permissions": perms})
		req, _ := http.NewRequest("POST", hs.URL+path+"?prettyPrint=false", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out bytes.Buffer
		out.ReadFrom(resp.Body)
		return resp.StatusCode, strings.TrimSpace(out.String())
	}
	for _, tc := range []struct {
		path, token string
		perms       []string
		code        int
		want        string
	}{
		{"/v3/projects/" + p + ":testIamPermissions", "some", []string{"compute.projects.get", "compute.projects.setCommonInstanceMetadata"}, 200, `{"permissions":["compute.projects.get"]}`},
		{"/v1/projects/" + p + "/serviceAccounts/sa@x.iam.gserviceaccount.com:testIamPermissions", "some", []string{"iam.serviceAccounts.actAs"}, 200, `{}`},
		{"/v1/projects/" + p + "/serviceAccounts/sa@x.iam.gserviceaccount.com:testIamPermissions", srv.Token(), []string{"iam.serviceAccounts.actAs"}, 200, `{"permissions":["iam.serviceAccounts.actAs"]}`},
		{"/v1/projects/" + p + "/iap_tunnel/zones/" + n.Zone + "/instances/" + n.Name + ":testIamPermissions", "some", []string{"iap.tunnelInstances.accessViaIAP"}, 200, `{"permissions":["iap.tunnelInstances.accessViaIAP"]}`},
		{"/v3/projects/" + p + ":testIamPermissions", "nobody", nil, 401, `"status":"UNAUTHENTICATED"`},
		{"/v3/projects/other:testIamPermissions", "some", nil, 403, `"status":"PERMISSION_DENIED"`},
		{"/v3/projects/" + p + ":getIamPolicy", "some", nil, 404, `"status":"NOT_FOUND"`},
	} {
		if c, body := post(tc.path, tc.token, tc.perms...); c != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("POST %s: %d %s, want %d %s", tc.path, c, body, tc.code, tc.want)
		}
	}
}

func TestControlFirewallsAndSerial(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 1})
	rule := map[string]any{"name": "deny-pods-ssh", "priority": 900, "sourceRanges": []string{"10.4.0.0/14"},
		"denied": []map[string]any{{"IPProtocol": "tcp", "ports": []string{"22"}}}}
	if code := ctl(t, hs, "POST", "/control/firewalls", rule, nil); code != 200 {
		t.Fatalf("add rule: %d", code)
	}
	var rules []compute.Firewall
	ctl(t, hs, "GET", "/control/firewalls", nil, &rules)
	if i := slices.IndexFunc(rules, func(r compute.Firewall) bool { return r.Name == "deny-pods-ssh" }); i < 0 || rules[i].Priority != 900 || rules[i].Direction != "INGRESS" {
		t.Errorf("rules after add = %+v", rules)
	}
	if code := ctl(t, hs, "POST", "/control/firewalls", map[string]any{"name": "Bad Name"}, nil); code != 400 {
		t.Errorf("bad rule name: %d, want 400", code)
	}
	if code := ctl(t, hs, "DELETE", "/control/firewalls/deny-pods-ssh", nil, nil); code != 204 {
		t.Errorf("delete: %d", code)
	}
	if code := ctl(t, hs, "DELETE", "/control/firewalls/deny-pods-ssh", nil, nil); code != 404 {
		t.Errorf("delete twice: %d, want 404", code)
	}
	name := srv.Nodes()[0]
	var out struct{ Contents string }
	if code := ctl(t, hs, "POST", "/control/nodes/"+name+"/serial", map[string]any{"lines": []string{"Kernel panic - not syncing: VFS"}}, &out); code != 200 ||
		!strings.HasSuffix(out.Contents, "\nKernel panic - not syncing: VFS") {
		t.Errorf("serial append: %d %q", code, out.Contents)
	}
}
