//go:build unix

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
)

// troubleshooterPermissions are what an account needs for everything
// gcloud compute ssh --troubleshoot and gkessh doctor read, and a login:
// all but networkmanagement.connectivitytests.get. gcloud's network
// check runs its connectivity test only with that one, and then first
// asks Google's DNS for the caller's address (ns1.google.com,
// o-o.myaddr.l.google.com), which cannot work here; without it gcloud
// says the permission is missing and goes on.
var troubleshooterPermissions = []string{
	"compute.instances.get", "compute.instances.list", "compute.instances.use", "compute.instances.setMetadata",
	"compute.instances.osLogin", "compute.instances.osAdminLogin", "compute.instances.getSerialPortOutput",
	"compute.instances.getEffectiveFirewalls", "compute.instances.getGuestAttributes", "compute.firewalls.list",
	"compute.networks.get", "resourcemanager.projects.get", "compute.projects.get", "compute.zoneOperations.get",
	"compute.globalOperations.get", "compute.projects.setCommonInstanceMetadata", "iam.serviceAccounts.actAs",
	"iam.serviceAccounts.get", "iap.tunnelInstances.accessViaIAP", "serviceusage.services.get",
	"serviceusage.services.enable", "monitoring.timeSeries.list",
}

// TestGcloudAndGkesshTroubleshootAlike runs `gcloud compute ssh NODE
// --troubleshoot --tunnel-through-iap` (gcloud 528) and `gkessh NODE
// --troubleshoot` on the same node in seeded states, as the same
// account, and compares what each consulted at the emulator (its request
// journal: the resources read and the permissions tested, by resource)
// and the problem each names. One emulator and node serve
// every state, each state undone before the next.
//
// The known differences are asserted as such:
//   - only gcloud asks Service Usage (enabling Network Management),
//     Network Management's testIamPermissions and Cloud Monitoring (CPU);
//     so only gcloud names a busy CPU;
//   - gcloud's firewall check looks for an allow rule naming IAP's range
//     and tcp:22 and ignores deny rules and priorities; gkessh evaluates
//     the rules, so only gkessh finds a deny rule shadowing the allow, and
//     only gcloud calls IAP shut out when default-allow-ssh (0.0.0.0/0)
//     alone admits it;
//   - on a stopped node gkessh stops after saying so, while gcloud goes
//     through every check;
//   - without compute.instances.setMetadata, on a node that reads the
//     project's keys, which the account may write, gcloud names a problem
//     and gkessh warns: the login gets in through the project;
//   - under OS Login gcloud names a missing osAdminLogin a problem even
//     with osLogin held; gkessh says the login works, without sudo (and
//     reads the OS Login profile for the POSIX user).
func TestGcloudAndGkesshTroubleshootAlike(t *testing.T) {
	need(t, "gcloud", "python3", "ssh")
	if testing.Short() {
		t.Skip("runs the real gcloud")
	}
	w := startEmulator(t, "--nodes", "1")
	env := append(gcloudEnv(t, w, filepath.Join(w.home, "gcloud")), "GKESSH_ACCESS_TOKEN_FILE=")
	node := w.nodes()[0]
	const domain = "@demo-project.iam.gserviceaccount.com"
	accounts := map[string]string{} // account -> the permission it lacks besides the connectivity tests'
	for name, lacks := range map[string]string{"trouble": "", "no-iap": "iap.tunnelInstances.accessViaIAP",
		"no-setmetadata": "compute.instances.setMetadata", "no-adminlogin": "compute.instances.osAdminLogin"} {
		var key json.RawMessage
		w.control("POST", "/control/accounts", map[string]any{"type": "service_account", "email": name + domain,
			"projects": []string{"demo-project"}, "permissions": slices.DeleteFunc(slices.Clone(troubleshooterPermissions), func(p string) bool { return p == lacks })}, &key)
		file := filepath.Join(t.TempDir(), name+".json")
		if err := os.WriteFile(file, key, 0o600); err != nil {
			t.Fatal(err)
		}
		mustGcloud(t, env, "auth", "activate-service-account", "--key-file", file)
		accounts[name+domain] = lacks
	}

	journal := func() []emulator.Request {
		var rs []emulator.Request
		w.control("GET", "/control/requests", nil, &rs)
		w.control("POST", "/control/requests/reset", nil, nil)
		return rs
	}
	// run runs both tools as account and returns what each printed and
	// consulted, and whether gkessh failed (exit 1).
	run := func(account string) (gcloudOut string, gcloudSaw []string, gkesshOut string, gkesshSaw []string, gkesshFailed bool) {
		t.Helper()
		as := append(slices.Clone(env), "CLOUDSDK_CORE_ACCOUNT="+account)
		journal()
		out, stderr, err := gcloud(t, as, "compute", "ssh", node.Name, "--zone", node.Zone, "--troubleshoot", "--tunnel-through-iap", "--quiet")
		if err != nil {
			t.Fatalf("gcloud --troubleshoot: %v\n%s%s", err, out, stderr)
		}
		gcloudOut, gcloudSaw = out+stderr, consulted(t, journal())
		cmd := w.command("gkessh", "--zone", node.Zone, node.Name, "--troubleshoot")
		cmd.Env = as
		b, err := runBounded(cmd, 2*time.Minute)
		var exit *exec.ExitError
		if err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 1) {
			t.Fatalf("gkessh --troubleshoot: %v\n%s", err, b)
		}
		return gcloudOut, gcloudSaw, string(b), consulted(t, journal()), err != nil
	}

	// What only gcloud consults, in every state. It enables the Network
	// Management API the first time (Service Usage says it is off), and
	// finds it on after that.
	const enable = "POST serviceusage projects/demo-project/services/networkmanagement.googleapis.com:enable"
	gcloudOnly := []string{
		"GET serviceusage projects/demo-project/services/networkmanagement.googleapis.com",
		"GET serviceusage projects/demo-project/services/monitoring.googleapis.com",
		"test networkmanagement.connectivitytests.get on connectivityTests/*",
		`GET monitoring timeSeries metric.type = "compute.googleapis.com/instance/cpu/utilization" AND metric.label.instance_name = "` + node.Name + `"`,
	}
	trouble := "trouble" + domain
	states := []struct {
		name        string
		account     string
		seed        func()
		undo        func()
		gcloud      string // the problem gcloud names ("" none)
		gkessh      string // the FAIL line gkessh prints ("" none)
		gkesshSkips bool   // gkessh stops early: it consults a subset of gcloud's
		gkesshOnly  string // what gkessh alone consults, besides gcloud's ("" nothing)
		gkesshOK    string // a line gkessh prints when it finds no problem where gcloud does
	}{
		{name: "healthy", account: trouble},
		{
			name: "no allow rule for IAP's range", account: trouble,
			seed: func() {
				// A hardened project: no default-allow-ssh either, so only
				// an IAP rule could admit IAP.
				w.control("DELETE", "/control/firewalls/allow-ssh-ingress-from-iap", nil, nil)
				w.control("DELETE", "/control/firewalls/default-allow-ssh", nil, nil)
			},
			undo: func() {
				for _, r := range []map[string]any{
					{"name": "allow-ssh-ingress-from-iap", "sourceRanges": []string{"35.235.240.0/20"}, "allowed": []map[string]any{{"IPProtocol": "tcp", "ports": []string{"22"}}}},
					{"name": "default-allow-ssh", "priority": 65534, "sourceRanges": []string{"0.0.0.0/0"}, "allowed": []map[string]any{{"IPProtocol": "tcp", "ports": []string{"22"}}}},
				} {
					w.control("POST", "/control/firewalls", r, nil)
				}
			},
			gcloud: "There is an issue with your IAP configuration",
			gkessh: `FAIL  firewall: from 35.235.240.0/20 \(IAP\) to tcp:22`,
		},
		{
			// A known difference: no rule names IAP's range, but the
			// default network's default-allow-ssh (0.0.0.0/0) admits it.
			// gcloud looks for the range by name; gkessh evaluates.
			name: "IAP admitted by default-allow-ssh alone", account: trouble,
			seed: func() { w.control("DELETE", "/control/firewalls/allow-ssh-ingress-from-iap", nil, nil) },
			undo: func() {
				w.control("POST", "/control/firewalls", map[string]any{"name": "allow-ssh-ingress-from-iap", "sourceRanges": []string{"35.235.240.0/20"},
					"allowed": []map[string]any{{"IPProtocol": "tcp", "ports": []string{"22"}}}}, nil)
			},
			gcloud:   "There is an issue with your IAP configuration",
			gkesshOK: `ok    firewall: from 35.235.240.0/20 \(IAP\) to tcp:22, rule default-allow-ssh \(allow, priority 65534\) admits it`,
		},
		{
			name: "the VM stopped", account: trouble,
			seed:        func() { w.control("POST", "/control/nodes/"+node.Name, map[string]any{"status": "TERMINATED"}, nil) },
			undo:        func() { w.control("POST", "/control/nodes/"+node.Name, map[string]any{"status": "RUNNING"}, nil) },
			gcloud:      "The VM may not be running",
			gkessh:      `FAIL  .*TERMINATED`,
			gkesshSkips: true,
		},
		{
			name: "lacking iap.tunnelInstances.accessViaIAP", account: "no-iap" + domain,
			gcloud: "You need permission to SSH to a private IP address: iap.tunnelInstances.accessViaIAP",
			gkessh: `FAIL  IAM on the IAP tunnel to .*: missing iap.tunnelInstances.accessViaIAP`,
		},
		{
			// A known difference: the node reads project keys and the
			// account may write them, so the login gets in without the
			// instance's setMetadata; gcloud names it a problem, gkessh
			// warns.
			name: "lacking compute.instances.setMetadata", account: "no-setmetadata" + domain,
			gcloud:   "You need the IAM permissions compute.instances.setMetadata",
			gkesshOK: `warn  IAM on the instance .*: missing compute.instances.setMetadata: your key goes to project metadata`,
		},
		{
			// A known difference: a deny rule for IAP's range above the
			// allow. gcloud looks only for an allow rule naming the range;
			// gkessh evaluates the rules.
			name: "a deny rule above IAP's allow rule", account: trouble,
			seed:   func() { w.control("POST", "/control/nodes/"+node.Name, map[string]any{"firewall": false}, nil) },
			undo:   func() { w.control("POST", "/control/nodes/"+node.Name, map[string]any{"firewall": true}, nil) },
			gkessh: `FAIL  firewall: from 35.235.240.0/20 \(IAP\) to tcp:22, rule gce-emulator-closed-\S+ \(deny, priority 1\) blocks it`,
		},
		{
			// A known difference: only gcloud reads Cloud Monitoring.
			name: "a busy CPU", account: trouble,
			seed:   func() { w.control("POST", "/control/nodes/"+node.Name, map[string]any{"cpu": 0.995}, nil) },
			undo:   func() { w.control("POST", "/control/nodes/"+node.Name, map[string]any{"cpu": 0.05}, nil) },
			gcloud: "VM CPU utilization is high",
		},
		{
			// A known difference: under OS Login gcloud wants both
			// osLogin and osAdminLogin; either lets one log in (osAdminLogin
			// adds sudo), as gkessh says. gkessh also reads the OS Login
			// profile, for the POSIX user.
			name: "OS Login, holding osLogin but not osAdminLogin", account: "no-adminlogin" + domain,
			seed: func() {
				w.control("POST", "/control/nodes/"+node.Name, map[string]any{"metadata": map[string]any{"enable-oslogin": "TRUE"}}, nil)
			},
			undo: func() {
				w.control("POST", "/control/nodes/"+node.Name, map[string]any{"metadata": map[string]any{"enable-oslogin": "false"}}, nil)
			},
			gcloud:     "You need the Compute OS Admin Login role (roles/compute.osAdminLogin) or the Compute OS Login role",
			gkesshOnly: "GET /v1/users/no-adminlogin" + domain + "/loginProfile",
			gkesshOK:   `ok    OS Login on .*: you hold compute.instances.osLogin \(roles/compute.osLogin\): login without sudo`,
		},
		{
			// Last: serial output cannot be taken back, and gcloud reads
			// all of it.
			name: "a full disk on the serial console", account: trouble,
			seed: func() {
				w.control("POST", "/control/nodes/"+node.Name+"/serial", map[string]any{"lines": []string{"mkdir: cannot create directory '/var/lib/docker': No space left on device"}}, nil)
			},
			gcloud: "The VM may need additional disk space",
			gkessh: `FAIL  serial console of .*: disk full`,
		},
	}
	// Where IAP's way is shut or refused, gkessh's tunnel check fails
	// too: the same problem, seen end to end.
	tunnelFail := regexp.MustCompile(`FAIL  IAP tunnel to `)
	for _, st := range states {
		if st.seed != nil {
			st.seed()
		}
		gOut, gSaw, kOut, kSaw, kFailed := run(st.account)
		if st.undo != nil {
			st.undo()
		}
		t.Logf("%s:\ngcloud consulted %q\ngkessh consulted %q", st.name, gSaw, kSaw)
		issues := gcloudIssues(gOut)
		// Every state runs as an account without connectivitytests.get.
		if !strings.Contains(gOut, "Missing the IAM permissions networkmanagement.connectivitytests.get") {
			t.Errorf("%s: gcloud's network check did not stop at the missing permission:\n%s", st.name, gOut)
		}
		switch {
		case st.gcloud == "" && issues != 0:
			t.Errorf("%s: gcloud found %d issues:\n%s", st.name, issues, gOut)
		case st.gcloud != "" && (issues != 1 || !strings.Contains(gOut, st.gcloud)):
			t.Errorf("%s: gcloud found %d issues, want one saying %q:\n%s", st.name, issues, st.gcloud, gOut)
		}
		if st.gkesshOK != "" && !regexp.MustCompile("(?m)^"+st.gkesshOK).MatchString(kOut) {
			t.Errorf("%s: gkessh did not say %q:\n%s", st.name, st.gkesshOK, kOut)
		}
		fails := failLines(kOut)
		want := regexp.MustCompile(st.gkessh)
		switch {
		case st.gkessh == "" && (kFailed || len(fails) > 0):
			t.Errorf("%s: gkessh failed:\n%s", st.name, kOut)
		case st.gkessh != "" && (!kFailed || !slices.ContainsFunc(fails, want.MatchString)):
			t.Errorf("%s: gkessh did not say %q:\n%s", st.name, st.gkessh, kOut)
		case st.gkessh != "":
			for _, f := range fails {
				if !want.MatchString(f) && !tunnelFail.MatchString(f) {
					t.Errorf("%s: gkessh names another problem too: %s", st.name, f)
				}
			}
		}

		// What each consulted: the same, but for the known differences.
		for _, only := range gcloudOnly {
			if !slices.Contains(gSaw, only) {
				t.Errorf("%s: gcloud did not consult %s", st.name, only)
			}
		}
		if first := st.name == states[0].name; slices.Contains(gSaw, enable) != first {
			t.Errorf("%s: gcloud enabled the Network Management API: %v, want %v", st.name, !first, first)
		}
		common := slices.DeleteFunc(slices.Clone(gSaw), func(s string) bool { return s == enable || slices.Contains(gcloudOnly, s) })
		if st.gkesshSkips {
			if extra := missingFrom(kSaw, common); len(extra) > 0 {
				t.Errorf("%s: gkessh consulted what gcloud did not: %q", st.name, extra)
			}
			if len(kSaw) >= len(common) {
				t.Errorf("%s: gkessh went on past the stopped VM: %q", st.name, kSaw)
			}
			continue
		}
		kSaw = slices.DeleteFunc(kSaw, func(s string) bool { return st.gkesshOnly != "" && s == st.gkesshOnly })
		if a, b := missingFrom(common, kSaw), missingFrom(kSaw, common); len(a) > 0 || len(b) > 0 {
			t.Errorf("%s: only gcloud consulted %q; only gkessh %q", st.name, a, b)
		}
	}

}

// TestGcloudConnectivityTest: the real gcloud creates and reads the
// emulator's Network Management connectivity tests
// (network-management connectivity-tests create/describe, the same API
// and wire format the troubleshooter's network check uses, which here
// cannot get past its DNS lookup), and the verdict follows the node's
// firewall.
func TestGcloudConnectivityTest(t *testing.T) {
	w, env := gcloudLoggedIn(t)
	w.control("POST", "/control/services", map[string]bool{"networkmanagement.googleapis.com": true}, nil)
	node := w.nodes()[0]
	for _, c := range []struct {
		id       string
		firewall bool
		want     string
	}{
		{"iap-closed", false, "UNREACHABLE"},
		{"iap-open", true, "REACHABLE"},
	} {
		w.control("POST", "/control/nodes/"+node.Name, map[string]any{"firewall": c.firewall}, nil)
		// --async: the emulator has the verdict at once, gcloud's wait
		// would only sleep.
		mustGcloud(t, env, "network-management", "connectivity-tests", "create", c.id, "--async",
			"--source-ip-address=35.235.241.7", "--destination-instance=projects/demo-project/zones/"+node.Zone+"/instances/"+node.Name,
			"--destination-port=22", "--protocol=TCP")
		got := mustGcloud(t, env, "network-management", "connectivity-tests", "describe", c.id, "--format=value(reachabilityDetails.result)")
		if strings.TrimSpace(got) != c.want {
			t.Errorf("%s: %q, want %s", c.id, got, c.want)
		}
	}
}

// consulted names what rs asked of the emulator, one entry per resource
// read and per permission tested on a resource, sorted and without
// repeats: gcloud reads the firewall rules and the serial console twice.
func consulted(t *testing.T, rs []emulator.Request) []string {
	var out []string
	for _, r := range rs {
		q, _ := url.ParseQuery(r.Query)
		p := r.Path
		switch {
		case strings.HasSuffix(p, ":testIamPermissions") || strings.HasSuffix(p, "/testIamPermissions"):
			var body struct{ Permissions []string }
			if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			on := strings.TrimSuffix(strings.TrimSuffix(p, ":testIamPermissions"), "/testIamPermissions")
			on = on[strings.LastIndex(on[:strings.LastIndex(on, "/")], "/")+1:]
			for _, perm := range body.Permissions {
				out = append(out, fmt.Sprintf("test %s on %s", perm, on))
			}
		case strings.HasPrefix(p, "/compute/v1/"):
			what := r.Method + " compute " + strings.TrimPrefix(p, "/compute/v1/")
			if strings.HasSuffix(p, "/serialPort") && !q.Has("start") {
				q.Set("start", "0") // the default
			}
			for _, k := range []string{"networkInterface", "queryPath", "port", "start"} {
				if q.Has(k) {
					what += " " + k + "=" + q.Get(k)
				}
			}
			out = append(out, what)
		case strings.HasPrefix(p, "/v1/projects/") && strings.Contains(p, "/services/"):
			out = append(out, r.Method+" serviceusage "+strings.TrimPrefix(p, "/v1/"))
		case strings.HasPrefix(p, "/v3/projects/") && strings.HasSuffix(p, "/timeSeries"):
			out = append(out, "GET monitoring timeSeries "+q.Get("filter"))
		default:
			out = append(out, r.Method+" "+p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// gcloudIssues adds up the "N issue(s) found." of gcloud's checks.
func gcloudIssues(out string) int {
	n := 0
	for _, m := range regexp.MustCompile(`: (\d+) issue\(s\) found\.`).FindAllStringSubmatch(out, -1) {
		var i int
		fmt.Sscan(m[1], &i)
		n += i
	}
	return n
}

// failLines are doctor's failed checks.
func failLines(out string) []string {
	var fails []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "FAIL") {
			fails = append(fails, l)
		}
	}
	return fails
}

// missingFrom returns what of a is not in b.
func missingFrom(a, b []string) []string {
	return slices.DeleteFunc(slices.Clone(a), func(s string) bool { return slices.Contains(b, s) })
}
