//go:build unix

package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rpc sends gcloud's request (method, path with query, JSON body) with
// token and returns the status and the decoded answer.
func rpc(t *testing.T, base, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestServiceUsageAndMonitoring: the requests gcloud compute ssh
// --troubleshoot sends to Service Usage and Cloud Monitoring, answered
// from the knobs (enabled APIs, a node's CPU) and the node's state.
func TestServiceUsageAndMonitoring(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 1})
	tok, n := srv.Token(), srv.nodeList()[0]
	const nm = "/v1/projects/demo-project/services/networkmanagement.googleapis.com"
	if code, out := rpc(t, hs.URL, tok, "GET", nm+"?alt=json", ""); code != 200 || out["state"] != "DISABLED" ||
		out["name"] != fmt.Sprintf("projects/%d/services/networkmanagement.googleapis.com", srv.project.ID) {
		t.Errorf("services.get before enabling: %d %v", code, out)
	}
	if code, out := rpc(t, hs.URL, tok, "POST", nm+":enable?alt=json", "{}"); code != 200 || out["done"] != true {
		t.Errorf("services.enable: %d %v", code, out)
	}
	if code, out := rpc(t, hs.URL, tok, "GET", nm+"?alt=json", ""); code != 200 || out["state"] != "ENABLED" {
		t.Errorf("services.get after enabling: %d %v", code, out)
	}

	end := time.Date(2026, 12, 7, 14, 1, 32, 655151000, time.UTC)
	series := "/v3/projects/demo-project/timeSeries?alt=json&" + url.Values{
		"filter":             {`metric.type = "compute.googleapis.com/instance/cpu/utilization" AND metric.label.instance_name = "` + n.Name + `"`},
		"interval.endTime":   {end.Format(time.RFC3339Nano)},
		"interval.startTime": {end.Add(-600 * time.Second).Format(time.RFC3339Nano)},
	}.Encode()
	cpu := func() (int, []any, map[string]any) {
		code, out := rpc(t, hs.URL, tok, "GET", series, "")
		ts, _ := out["timeSeries"].([]any)
		if len(ts) == 0 {
			return code, nil, out
		}
		return code, ts[0].(map[string]any)["points"].([]any), out
	}
	n.SetCPU(0.995)
	if code, points, out := cpu(); code != 200 || len(points) != 10 ||
		points[0].(map[string]any)["value"].(map[string]any)["doubleValue"] != 0.995 {
		t.Errorf("CPU at 0.995: %d, %d points: %v", code, len(points), out)
	}
	n.SetStatus("TERMINATED")
	if code, points, out := cpu(); code != 200 || points != nil {
		t.Errorf("CPU of a stopped node: %d %v", code, out)
	}
	srv.SetServices(map[string]bool{"monitoring.googleapis.com": false})
	if code, _, out := cpu(); code != 403 || !strings.Contains(fmt.Sprint(out), "SERVICE_DISABLED") {
		t.Errorf("CPU with Monitoring disabled: %d %v", code, out)
	}
	limited := "emu-limited"
	srv.AddGrant(limited, Grant{Projects: []string{"demo-project"}, Permissions: []string{"serviceusage.services.get"}})
	if code, out := rpc(t, hs.URL, limited, "POST", nm+":enable?alt=json", "{}"); code != 403 || !strings.Contains(fmt.Sprint(out), "serviceusage.services.enable") {
		t.Errorf("services.enable without the permission: %d %v", code, out)
	}
}

// TestConnectivityTests: gcloud's connectivity test (create, the
// operation, get) judged from the node's state and firewall rules, and
// Network Management's testIamPermissions from the token's grant.
func TestConnectivityTests(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 1})
	tok, n := srv.Token(), srv.nodeList()[0]
	const global = "/v1/projects/demo-project/locations/global"
	test := func(id, ip, extra string) string {
		t.Helper()
		body := fmt.Sprintf(`{%s"description": "This connectivity test is created by 'gcloud compute ssh --troubleshoot'", `+
			`"destination": {"instance": "projects/demo-project/zones/%s/instances/%s", "port": 22}, `+
			`"name": "projects/demo-project/locations/global/connectivityTests/%s", "protocol": "TCP", `+
			`"source": {"ipAddress": "%s", "projectId": "demo-project"}}`, extra, n.Zone, n.Name, id, ip)
		code, op := rpc(t, hs.URL, tok, "POST", global+"/connectivityTests?alt=json&testId="+id, body)
		if code != 200 || op["done"] != false {
			t.Fatalf("create %s: %d %v", id, code, op)
		}
		code, op = rpc(t, hs.URL, tok, "GET", "/v1/"+op["name"].(string)+"?alt=json", "")
		if code != 200 || op["done"] != true {
			t.Fatalf("operation of %s: %d %v", id, code, op)
		}
		code, got := rpc(t, hs.URL, tok, "GET", global+"/connectivityTests/"+id+"?alt=json", "")
		if code != 200 {
			t.Fatalf("get %s: %d %v", id, code, got)
		}
		return got["reachabilityDetails"].(map[string]any)["result"].(string)
	}
	srv.SetServices(map[string]bool{"networkmanagement.googleapis.com": true})
	for _, c := range []struct {
		id, ip, extra, want string
		change              func()
	}{
		{"from-iap", "35.235.241.7", "", "REACHABLE", func() {}},
		{"closed", "35.235.241.7", "", "UNREACHABLE", func() { n.SetFirewall(false) }},
		{"bypass", "35.235.241.7", `"bypassFirewallChecks": true, `, "REACHABLE", func() {}},
		{"from-anywhere", "203.0.113.9", "", "REACHABLE", func() {}}, // default-allow-ssh
		{"stopped", "203.0.113.9", "", "UNREACHABLE", func() { n.SetStatus("TERMINATED") }},
	} {
		c.change()
		if got := test(c.id, c.ip, c.extra); got != c.want {
			t.Errorf("%s: %s, want %s", c.id, got, c.want)
		}
	}

	limited := "emu-limited"
	srv.AddGrant(limited, Grant{Projects: []string{"demo-project"}, Permissions: []string{"networkmanagement.connectivitytests.create"}})
	code, out := rpc(t, hs.URL, limited, "POST", global+"/connectivityTests/*:testIamPermissions?alt=json",
		`{"permissions": ["networkmanagement.connectivitytests.get"]}`)
	if code != 200 || len(out) != 0 {
		t.Errorf("testIamPermissions without the permission: %d %v", code, out)
	}
	if code, out := rpc(t, hs.URL, limited, "GET", global+"/connectivityTests/from-iap?alt=json", ""); code != 403 {
		t.Errorf("get without the permission: %d %v", code, out)
	}
	srv.SetServices(map[string]bool{"networkmanagement.googleapis.com": false})
	if code, out := rpc(t, hs.URL, tok, "POST", global+"/connectivityTests/*:testIamPermissions?alt=json",
		`{"permissions": ["networkmanagement.connectivitytests.get"]}`); code != 403 || !strings.Contains(fmt.Sprint(out), "SERVICE_DISABLED") {
		t.Errorf("testIamPermissions with the API disabled: %d %v", code, out)
	}
}
