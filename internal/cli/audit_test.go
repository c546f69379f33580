//go:build unix

package cli

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/keys"
)

// auditReport is the documented JSON shape of `gkessh audit --format json`
// (README, "gkessh audit"); decoding rejects any other field.
type auditReport struct {
	Project  string `json:"project"`
	Nodes    []string
	Probed   int `json:"probed"`
	Unprobed []struct {
		Node  string `json:"node"`
		Error string `json:"error"`
	} `json:"unprobed"`
	Findings []auditFinding `json:"findings"`
}

type auditFinding struct {
	ID       string   `json:"id"`
	Severity string   `json:"severity"`
	Title    string   `json:"title"`
	Nodes    []string `json:"nodes"`
	Evidence []string `json:"evidence"`
	Fix      []string `json:"fix"`
}

// auditJSON runs `gkessh audit --format json ARGS`, checks the output
// against the documented shape and returns it with stderr and the status.
func (e *testEnv) auditJSON(args ...string) (auditReport, string, int) {
	e.t.Helper()
	stdout, stderr, code := e.run(append([]string{"audit", "--format", "json"}, args...)...)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		e.t.Fatalf("audit output is not a JSON object: %v\n%s\n%s", err, stdout, stderr)
	}
	for _, k := range []string{"project", "nodes", "probed", "unprobed", "findings"} {
		if _, ok := raw[k]; !ok {
			e.t.Fatalf("audit JSON lacks %q: %s", k, stdout)
		}
	}
	var rep auditReport
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		e.t.Fatalf("audit JSON: %v", err)
	}
	for _, f := range rep.Findings {
		if f.ID == "" || f.Title == "" || f.Nodes == nil || len(f.Evidence) == 0 || len(f.Fix) == 0 ||
			!slices.Contains([]string{"info", "low", "medium", "high"}, f.Severity) {
			e.t.Fatalf("finding breaks the documented shape: %+v", f)
		}
	}
	return rep, stderr, code
}

func findingIDs(rep auditReport) []string {
	var ids []string
	for _, f := range rep.Findings {
		ids = append(ids, f.ID)
	}
	slices.Sort(ids)
	return ids
}

func finding(rep auditReport, id string) *auditFinding {
	for i := range rep.Findings {
		if rep.Findings[i].ID == id {
			return &rep.Findings[i]
		}
	}
	return nil
}

// cleanProject removes every exposure the emulator starts with: the
// read-only ports are off, default-allow-ssh is gone, and a rule keeps
// pods off tcp:22.
func (e *testEnv) cleanProject() {
	e.t.Helper()
	for _, name := range e.srv.Nodes() {
		if err := e.srv.SetKubeletReadOnlyPort(name, false); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.srv.DeleteFirewallRule("default-allow-ssh"); err != nil {
		e.t.Fatal(err)
	}
	for _, c := range e.srv.Clusters() {
		e.putRule(&compute.Firewall{Name: "gke-" + c.Name + "-deny-pod-ssh", Priority: 999, SourceRanges: []string{c.PodRange},
			Denied: []*compute.FirewallDenied{{IPProtocol: "tcp", Ports: []string{"22"}}}})
	}
}

func (e *testEnv) putRule(fw *compute.Firewall) {
	e.t.Helper()
	if err := e.srv.PutFirewallRule(fw); err != nil {
		e.t.Fatal(err)
	}
}

// applyFix carries out a fix the audit printed, as the command would on
// GCP: gkessh commands run for real; gcloud ones change the emulator as
// the real command changes GCP.
func (e *testEnv) applyFix(fix string) {
	e.t.Helper()
	if strings.HasPrefix(fix, "#") {
		return // a note, not a command
	}
	words := strings.Fields(strings.SplitN(fix, " #", 2)[0])
	flags := map[string]string{}
	var args []string
	for _, w := range words {
		if k, v, ok := strings.Cut(w, "="); ok && strings.HasPrefix(k, "--") {
			flags[k[2:]] = v
		} else if strings.HasPrefix(w, "--") {
			flags[w[2:]] = ""
		} else {
			args = append(args, w)
		}
	}
	cmd := strings.Join(args[:min(len(args), 4)], " ")
	switch {
	case words[0] == "gkessh":
		if _, stderr, code := e.run(words[1:]...); code != 0 {
			e.t.Fatalf("fix %q: exit %d: %s", fix, code, stderr)
		}
	case cmd == "gcloud compute firewall-rules create":
		prio, _ := strconv.ParseInt(flags["priority"], 10, 64)
		fw := &compute.Firewall{Name: args[4], Priority: prio, SourceRanges: strings.Split(flags["source-ranges"], ","),
			ForceSendFields: []string{"Priority"}}
		if _, ok := flags["priority"]; !ok {
			fw.Priority = 1000
		}
		if flags["target-tags"] != "" {
			fw.TargetTags = strings.Split(flags["target-tags"], ",")
		}
		proto, port, _ := strings.Cut(flags["rules"], ":")
		if flags["action"] == "deny" {
			fw.Denied = []*compute.FirewallDenied{{IPProtocol: proto, Ports: []string{port}}}
		} else {
			fw.Allowed = []*compute.FirewallAllowed{{IPProtocol: proto, Ports: []string{port}}}
		}
		if flags["network"] != "default" || flags["direction"] != "INGRESS" {
			e.t.Fatalf("fix %q: unexpected network or direction", fix)
		}
		e.putRule(fw)
	case cmd == "gcloud compute firewall-rules update":
		for _, fw := range e.srv.FirewallRules() {
			if fw.Name == args[4] {
				fw.SourceRanges = strings.Split(flags["source-ranges"], ",")
				e.putRule(fw)
				return
			}
		}
		e.t.Fatalf("fix %q: no rule %s", fix, args[4])
	case cmd == "gcloud container node-pools update":
		if _, ok := flags["no-enable-insecure-kubelet-readonly-port"]; !ok {
			e.t.Fatalf("fix %q: not GKE's flag for the read-only port", fix)
		}
		for _, name := range e.srv.Nodes() {
			if strings.HasPrefix(name, "gke-"+flags["cluster"]+"-"+args[4]+"-") {
				if err := e.srv.SetKubeletReadOnlyPort(name, false); err != nil {
					e.t.Fatal(err)
				}
			}
		}
	case strings.HasPrefix(cmd, "gcloud projects get-iam-policy "):
		// It only reads.
	case cmd == "gcloud container clusters update":
		// GKE: existing node pools keep their setting.
	case cmd == "gcloud compute instances add-metadata", cmd == "gcloud compute instances remove-metadata":
		attrs := map[string]*string{}
		for _, kv := range strings.Split(flags["metadata"], ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				attrs[k] = &v
			}
		}
		for _, k := range strings.Split(flags["keys"], ",") {
			if k != "" {
				attrs[k] = nil
			}
		}
		if err := e.srv.SetInstanceMetadata(args[4], attrs); err != nil {
			e.t.Fatal(err)
		}
	case cmd == "gcloud compute project-info remove-metadata":
		if err := e.srv.SetProjectMetadata(map[string]*string{flags["keys"]: nil}); err != nil {
			e.t.Fatal(err)
		}
	default:
		e.t.Fatalf("fix %q: the test cannot carry it out", fix)
	}
}

// TestAuditFindings: from a clean project, each change produces exactly
// its finding (and those it implies), with the expected evidence; carrying
// out every fix the audit prints makes the finding go away.
func TestAuditFindings(t *testing.T) {
	t.Parallel()
	permanent := func(user string) string { return keys.FormatLine(user, testkey.Public(t), "") }
	for _, tc := range []struct {
		name     string
		change   func(e *testEnv)
		want     []string // finding IDs, sorted
		evidence string   // in the last finding's evidence
		nodes    int      // how many nodes the last finding names
		fail     int      // exit status with the default --fail-on high
	}{
		{"clean", func(*testEnv) {}, nil, "", 0, 0},
		{"kubelet read-only port in use", func(e *testEnv) {
			n := e.srv.Nodes()[0]
			if err := e.srv.SetKubeletReadOnlyPort(n, true); err != nil {
				t.Fatal(err)
			}
			if err := e.srv.PollKubelet(context.Background(), n, "/pods", 4); err != nil {
				t.Fatal(err)
			}
		}, []string{"kubelet-readonly-port"}, `in use: kubelet_http_requests_total{server_type="readonly"} path="pods" 4`, 1, 1},
		{"pods reach sshd", func(e *testEnv) {
			for _, c := range e.srv.Clusters() {
				e.srv.DeleteFirewallRule("gke-" + c.Name + "-deny-pod-ssh")
			}
		}, []string{"pods-reach-sshd"}, "sshd answers on 10.128.", 3, 0},
		{"ssh open to the internet", func(e *testEnv) {
			e.putRule(&compute.Firewall{Name: "open-ssh", Priority: 500, SourceRanges: []string{"0.0.0.0/0"},
				Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"20-30"}}}})
			// It also outranks the rule that kept pods out.
		}, []string{"pods-reach-sshd", "ssh-open-to-internet"}, "rule open-ssh (allow, priority 500) admits it", 3, 1},
		{"IAP range blocked by a deny", func(e *testEnv) {
			e.putRule(&compute.Firewall{Name: "deny-ssh", Priority: 100, SourceRanges: []string{"0.0.0.0/0"},
				Denied: []*compute.FirewallDenied{{IPProtocol: "all"}}})
		}, []string{"iap-range-missing"}, "rule deny-ssh (deny, priority 100) blocks it", 3, 0},
		{"IAP rule missing", func(e *testEnv) { e.srv.DeleteFirewallRule("allow-ssh-ingress-from-iap") },
			[]string{"iap-range-missing"}, "the implied deny-ingress rule blocks it", 3, 0},
		{"project keys", func(e *testEnv) {
			line := permanent("alice")
			e.srv.SetProjectMetadata(map[string]*string{"ssh-keys": &line})
		}, []string{"keys-never-expire", "project-keys-not-blocked", "project-keys-sudo"}, "", 3, 0},
		{"expired key", func(e *testEnv) {
			line := keys.FormatExpiringLine("bob", testkey.Public(t), time.Now().Add(-time.Hour))
			e.srv.SetProjectMetadata(map[string]*string{"ssh-keys": &line})
		}, []string{"keys-expired"}, "user bob expired", 3, 0},
		{"legacy sshKeys", func(e *testEnv) {
			line := keys.FormatExpiringLine("carol", testkey.Public(t), time.Now().Add(time.Hour))
			e.srv.SetInstanceMetadata(e.srv.Nodes()[1], map[string]*string{"sshKeys": &line})
		}, []string{"legacy-sshkeys"}, "instance sshKeys line 1", 1, 0},
		{"a node's own OS Login", func(e *testEnv) {
			e.srv.SetInstanceMetadata(e.srv.Nodes()[2], map[string]*string{"enable-oslogin": ptrTo("TRUE")})
		}, []string{"oslogin-iam"}, "under OS Login by its own enable-oslogin=TRUE", 1, 0},
		// The emulator's default-pool nodes carry enable-oslogin=false, as
		// GKE pools that do not support OS Login do.
		{"project OS Login that the nodes override", func(e *testEnv) {
			e.srv.SetProjectMetadata(map[string]*string{"enable-oslogin": ptrTo("TRUE")})
		}, []string{"oslogin-ignored"}, "its own enable-oslogin=false overrides the project's enable-oslogin=TRUE", 3, 0},
		{"project OS Login and keys: the nodes under it are judged by IAM", func(e *testEnv) {
			line := permanent("alice")
			e.srv.SetProjectMetadata(map[string]*string{"enable-oslogin": ptrTo("TRUE"), "ssh-keys": &line})
			for _, n := range e.srv.Nodes()[1:] {
				e.srv.SetInstanceMetadata(n, map[string]*string{"enable-oslogin": nil})
			}
		}, []string{"keys-never-expire", "oslogin-iam", "oslogin-ignored", "project-keys-not-blocked", "project-keys-sudo"},
			"without block-project-ssh-keys: 1 node", 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newParallelEnv(t, emulator.Config{Nodes: 3})
			e.cleanProject()
			tc.change(e)
			rep, stderr, code := e.auditJSON("--all")
			if got := findingIDs(rep); !slices.Equal(got, tc.want) {
				t.Fatalf("findings %v, want %v\n%+v\n%s", got, tc.want, rep.Findings, stderr)
			}
			if code != tc.fail {
				t.Errorf("exit %d, want %d", code, tc.fail)
			}
			if len(tc.want) == 0 {
				return
			}
			f := finding(rep, tc.want[len(tc.want)-1])
			if !strings.Contains(strings.Join(f.Evidence, "\n"), tc.evidence) || len(f.Nodes) != tc.nodes {
				t.Errorf("%s: nodes %v, evidence %q; want %d nodes and %q", f.ID, f.Nodes, f.Evidence, tc.nodes, tc.evidence)
			}
			for _, f := range rep.Findings {
				for _, fix := range f.Fix {
					if !strings.HasPrefix(fix, "first ") {
						e.applyFix(fix)
					}
				}
			}
			after, stderr, code := e.auditJSON("--all")
			// Nodes under OS Login stay a finding to review, with no fix.
			after.Findings = slices.DeleteFunc(after.Findings, func(f auditFinding) bool { return f.ID == "oslogin-iam" })
			if len(after.Findings) != 0 || code != 0 {
				t.Errorf("after the fixes: exit %d, findings %+v\n%s", code, after.Findings, stderr)
			}
		})
	}
}

// TestAudit50Nodes: 50 nodes with mixed settings; the audit names exactly
// the expected findings on exactly the expected nodes, in JSON and in the
// table.
func TestAudit50Nodes(t *testing.T) {
	if testing.Short() {
		t.Skip("50 nodes")
	}
	e := newParallelEnv(t, emulator.Config{Nodes: 50})
	e.cleanProject()
	names := e.srv.Nodes()
	line := keys.FormatLine("alice", testkey.Public(t), "alice@laptop")
	if err := e.srv.SetProjectMetadata(map[string]*string{"ssh-keys": &line}); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for i, name := range names {
		if i%4 == 0 {
			if err := e.srv.SetKubeletReadOnlyPort(name, true); err != nil {
				t.Fatal(err)
			}
			want["kubelet-readonly-port"] = append(want["kubelet-readonly-port"], name)
		}
		if i%8 == 0 {
			if err := e.srv.PollKubelet(context.Background(), name, "/stats/summary", 2); err != nil {
				t.Fatal(err)
			}
		}
		attrs := map[string]*string{}
		switch {
		case i%5 == 0:
			attrs["block-project-ssh-keys"] = ptrTo("TRUE")
		case i == 7:
			attrs["sshKeys"] = ptrTo(keys.FormatExpiringLine("carol", testkey.Public(t), time.Now().Add(time.Hour)))
			want["legacy-sshkeys"] = []string{name}
		case i == 11: // under OS Login: judged by IAM, not by the project's keys
		default:
			for _, id := range []string{"project-keys-sudo", "keys-never-expire", "project-keys-not-blocked"} {
				want[id] = append(want[id], name)
			}
		}
		if i == 11 {
			attrs["enable-oslogin"] = ptrTo("TRUE")
			want["oslogin-iam"] = []string{name}
		}
		if len(attrs) > 0 {
			if err := e.srv.SetInstanceMetadata(name, attrs); err != nil {
				t.Fatal(err)
			}
		}
	}
	rulesBefore := len(e.srv.FirewallRules())
	e.srv.ResetStats()
	rep, stderr, code := e.auditJSON("--all", "-P", "8", "--fail-on", "medium")
	// It says what it wrote, where it said nothing
	// changed.
	if !strings.Contains(stderr, "gkessh: audited 50 nodes, 49 checked live (the checks only read; 12 expiring key lines were written, to ") {
		t.Errorf("stderr lacks the summary: %s", stderr)
	}
	// One project key write serves every node that reads project keys; the
	// 10 that block them and the one with legacy sshKeys get their own.
	if w := e.srv.Stats().MetadataWrites; w != 1+10+1 {
		t.Errorf("%d metadata writes, want 12: one for the project, one per node that ignores it", w)
	}
	if n := len(e.srv.FirewallRules()); n != rulesBefore {
		t.Errorf("audit changed the firewall rules: %d, were %d", n, rulesBefore)
	}
	if code != 1 {
		t.Errorf("exit %d with high and medium findings and --fail-on medium, want 1", code)
	}
	if len(rep.Nodes) != 50 {
		t.Fatalf("audited %d nodes, want 50", len(rep.Nodes))
	}
	got := map[string][]string{}
	for _, f := range rep.Findings {
		got[f.ID] = f.Nodes
	}
	for id, nodes := range want {
		slices.Sort(nodes)
		if !slices.Equal(got[id], nodes) {
			t.Errorf("%s on %v, want %v", id, got[id], nodes)
		}
	}
	for id := range got {
		if want[id] == nil {
			t.Errorf("unexpected finding %s on %v", id, got[id])
		}
	}
	// Every node but the OS Login one was checked live; the polled ones
	// show their use of the port.
	if rep.Probed != 49 || len(rep.Unprobed) != 1 || rep.Unprobed[0].Node != names[11] {
		t.Errorf("probed %d, unprobed %+v; want 49 and %s", rep.Probed, rep.Unprobed, names[11])
	}
	ev := strings.Join(finding(rep, "kubelet-readonly-port").Evidence, "\n")
	for i, name := range names {
		inUse := strings.Contains(ev, name+`: in use: kubelet_http_requests_total{server_type="readonly"} path="stats" 2`)
		if inUse != (i%8 == 0) {
			t.Errorf("%s: in-use evidence %v, want %v", name, inUse, i%8 == 0)
		}
	}
	if t.Failed() {
		t.Log(stderr)
	}
	// --pool audits that pool's nodes only.
	var pool1 []string
	for _, name := range names {
		if strings.Contains(name, "-pool-1-") {
			pool1 = append(pool1, name)
		}
	}
	if sub, _, _ := e.auditJSON("--pool", "pool-1", "--no-probe"); len(pool1) == 0 || !slices.Equal(sub.Nodes, pool1) || sub.Probed != 0 {
		t.Errorf("--pool pool-1 audited %v (probed %d), want %v", sub.Nodes, sub.Probed, pool1)
	}
	// The table says the same.
	table, _, _ := e.run("audit", "--all", "--no-probe")
	for id, nodes := range want {
		if !strings.Contains(table, id+"  ") || !regexpRow(table, id, len(nodes)) {
			t.Errorf("table lacks %s on %d/50:\n%s", id, len(nodes), table)
		}
	}
}

// regexpRow reports whether the table's summary row for id says n/50.
func regexpRow(table, id string, n int) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == id {
			return f[2] == strconv.Itoa(n)+"/50"
		}
	}
	return false
}

// TestAuditAgain: a second audit sees the first one's requests on the
// read-only port and does not take them for a workload's.
func TestAuditAgain(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	e.cleanProject()
	name := e.srv.Nodes()[0]
	if err := e.srv.SetKubeletReadOnlyPort(name, true); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"no requests besides audit's", `path="healthz" 1, path="metrics" 1: as many /healthz as /metrics requests and nothing else`} {
		rep, stderr, _ := e.auditJSON(name)
		f := finding(rep, "kubelet-readonly-port")
		if f == nil || !strings.Contains(strings.Join(f.Evidence, "\n"), want) || strings.HasPrefix(f.Fix[0], "# first move") {
			t.Errorf("audit %d: %+v, want evidence %q and no client move\n%s", i+1, f, want, stderr)
		}
	}
}

func TestAuditUsage(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	for _, args := range [][]string{
		{"audit"},
		{"audit", "--all", "--format", "xml"},
		{"audit", "--all", "--fail-on", "info"},
		{"audit", "--all", "-P", "0"},
		{"audit", "node-a", "--pool", "p"},
	} {
		if _, stderr, code := e.run(args...); code != exitUsage || !strings.Contains(stderr, "gkessh audit --help") && !strings.Contains(stderr, "--help") {
			t.Errorf("%v: exit %d, stderr %q; want %d and a pointer to the help", args, code, stderr, exitUsage)
		}
	}
	// A failed audit (no such node) is gkessh's own failure, not a finding.
	if _, stderr, code := e.run("audit", "gke-nope"); code != 255 || !strings.Contains(stderr, "gke-nope") {
		t.Errorf("audit of a missing node: exit %d, %q; want 255", code, stderr)
	}
}

// TestAuditSaysWhatItWrote: audit says on stderr which key line its live
// checks added (user, fingerprint, where, expiry, on how many nodes it
// grants sudo), and its closing line says one expiring line was written;
// the next audit says it reused the line and that nothing changed. run
// says the same.
func TestAuditSaysWhatItWrote(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 3})
	e.cleanProject()
	added := regexp.MustCompile(`(?m)^Added nat's key SHA256:\S+ to project metadata ssh-keys, expiring \S+: it grants sudo on 3 nodes\.$`)
	_, stderr, _ := e.auditJSON("--all", "--user", "nat")
	if !added.MatchString(stderr) || !strings.Contains(stderr, "(the checks only read; one expiring key line was written, to project metadata ssh-keys)") {
		t.Errorf("first audit's stderr:\n%s\nwant the line it added and the closing line saying so", stderr)
	}
	_, stderr, _ = e.auditJSON("--all", "--user", "nat")
	reused := regexp.MustCompile(`(?m)^Using nat's key SHA256:\S+ already in project metadata ssh-keys, expiring \S+: it grants sudo on 3 nodes\.$`)
	if len(reused.FindAllString(stderr, -1)) != 1 || !strings.Contains(stderr, "(the checks only read; no node was changed)") {
		t.Errorf("second audit's stderr:\n%s\nwant the line it reused, once, and no change", stderr)
	}
	_, stderr, code := e.run("run", "--all", "--user", "ann", "--", "true")
	if code != 0 || !regexp.MustCompile(`(?m)^Added ann's key SHA256:\S+ to project metadata ssh-keys, expiring \S+: it grants sudo on 3 nodes\.$`).MatchString(stderr) {
		t.Errorf("run: exit %d, stderr:\n%s\nwant the line it added", code, stderr)
	}
}

// TestAuditOwnKeys: the auditor's own key lines are judged like anyone's
// (a permanent project line of theirs gives sudo everywhere); only the
// expiring line audit's own login uses is left out.
func TestAuditOwnKeys(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 2})
	e.cleanProject()
	// The auditor's key, permanent, for admin: their standing access.
	if _, stderr, code := e.run("keys", "ensure", "--user", "admin", "--key-expire-after", "0"); code != 0 {
		t.Fatalf("keys ensure: exit %d\n%s", code, stderr)
	}
	for i := range 2 {
		rep, stderr, _ := e.auditJSON("--all", "--user", "nat")
		f := finding(rep, "keys-never-expire")
		if f == nil || !strings.Contains(strings.Join(f.Evidence, "\n"), "user admin") {
			t.Errorf("audit %d: keys-never-expire %+v, want admin's permanent line\n%s", i+1, f, stderr)
		}
		if s := finding(rep, "project-keys-sudo"); s == nil || strings.Contains(strings.Join(s.Evidence, "\n"), "nat") {
			t.Errorf("audit %d: project-keys-sudo %+v, want admin's and not the audit's own expiring line", i+1, s)
		}
	}
}
