//go:build unix

package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// TestEmptySelection: a selection that matches no RUNNING node is an
// error naming the selection and saying what the project has (exit 255 for
// run and audit, 1 for config-ssh and inventory), before anything is
// written; a selection that matches nodes still works. A typo in --cluster
// must not turn CI green. (Before, each of these exited 0
// having done nothing, and config-ssh wrote an empty block)
func TestEmptySelection(t *testing.T) {
	// 22 nodes: the default pool, and one node of pool-1.
	e := newParallelEnv(t, emulator.Config{Nodes: 22})
	stopped := e.srv.Nodes()[0]
	stoppedNode := e.srv.Node(stopped)
	if err := stoppedNode.SetStatus("TERMINATED"); err != nil {
		t.Fatal(err)
	}
	clusters := "its GKE clusters: cluster (pools default-pool, pool-1)"
	cases := []struct {
		name string
		args []string
		want []string // in stderr
	}{
		{"run cluster", []string{"run", "--no-stdin", "--cluster", "prod", "--", "true"},
			[]string{"no RUNNING instance in project demo-project matches cluster prod", clusters}},
		{"run cluster and pool", []string{"run", "--no-stdin", "--cluster", "cluster", "--pool", "nope", "--", "true"},
			[]string{"matches cluster cluster and node pool nope", clusters}},
		{"run filter", []string{"run", "--no-stdin", "--filter", "labels.env=prod", "--", "true"},
			[]string{"matches filter labels.env=prod", clusters}},
		{"run only a stopped node", []string{"run", "--no-stdin", "--filter", "name=" + stopped, "--", "true"},
			[]string{"1 matched but are not RUNNING: " + stopped + " TERMINATED", clusters}},
		{"run all in an empty zone", []string{"run", "--no-stdin", "--all", "--zone", "europe-west1-b", "--", "true"},
			[]string{"no RUNNING instance in zone europe-west1-b of project demo-project", "zone europe-west1-b has no RUNNING instance: check --zone and --project"}},
		{"audit pool", []string{"audit", "--no-probe", "--pool", "defualt-pool"},
			[]string{"matches node pool defualt-pool", clusters}},
		{"audit filter", []string{"audit", "--no-probe", "--filter", "labels.env=prod"},
			[]string{"matches filter labels.env=prod", clusters}},
		{"config-ssh cluster", []string{"config-ssh", "--cluster", "prod"},
			[]string{"matches cluster prod", clusters}},
		{"config-ssh pattern", []string{"config-ssh", "--pattern", "gke-prod-*"},
			[]string{"matches name pattern gke-prod-*", clusters}},
		{"config-ssh filter", []string{"config-ssh", "--filter", "labels.goog-k8s-node-pool-name=pool-2"},
			[]string{"matches filter labels.goog-k8s-node-pool-name=pool-2", clusters}},
		{"inventory pool", []string{"inventory", "--list", "--pool", "pool-2"},
			[]string{"matches node pool pool-2", clusters}},
		{"inventory pattern and zone", []string{"inventory", "--list", "--pattern", "*-pool-1-*", "--zone", "us-west1-b"},
			[]string{"no RUNNING instance in zone us-west1-b of project demo-project matches name pattern *-pool-1-*", "zone us-west1-b has"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := e.run(tc.args...)
			// Each command's status for its own failures.
			if want := map[string]int{"run": exitFailure, "audit": exitFailure}[tc.args[0]]; code != max(want, exitOther) {
				t.Errorf("exit %d, want %d", code, max(want, exitOther))
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if _, err := os.Stat(filepath.Join(e.home, ".ssh", "config")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("~/.ssh/config written: %v", err)
			}
		})
	}
	t.Run("a match still works", func(t *testing.T) {
		for _, args := range [][]string{
			{"run", "--no-stdin", "--cluster", "cluster", "--pool", "pool-1", "--", "true"},
			{"audit", "--no-probe", "--pool", "pool-1", "--fail-on", "high", "--format", "json"},
			{"inventory", "--list", "--pattern", "*-pool-1-*", "--zone", "us-west1-a"},
		} {
			if _, stderr, code := e.run(args...); code != 0 && code != 1 {
				t.Errorf("%v: exit %d\n%s", args, code, stderr)
			}
		}
	})
}

// TestFilterOneMeaning: --filter is the Compute API list filter in run,
// audit, config-ssh and inventory, picking the same nodes in each; what
// cannot be one (a regular expression or a glob on names, unbalanced, or
// refused by the API) is a usage error (exit 2) that says what a filter
// looks like, and config-ssh leaves ~/.ssh/config as it was. The name
// glob of config-ssh and inventory is --pattern. (Before, config-ssh and
// inventory read --filter as a regular expression on names, so a run
// filter gave them an empty block, and run answered a regular expression
// with the API's 400 and exit 255.)
func TestFilterOneMeaning(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 22})
	var pool1 []string
	for _, name := range e.srv.Nodes() {
		if strings.Contains(name, "-pool-1-") {
			pool1 = append(pool1, name)
		}
	}
	if len(pool1) != 1 {
		t.Fatalf("want one pool-1 node, got %v", pool1)
	}
	filter := "labels.goog-k8s-node-pool-name = pool-1"
	t.Run("picks the same nodes", func(t *testing.T) {
		got, stderr, code := e.runJSON(nil, "--filter", filter, "--no-stdin", "--", "true")
		if ok := okNodes(got); code != 0 || !slices.Equal(ok, pool1) {
			t.Errorf("run: exit %d on %v, want %v\n%s", code, ok, pool1, stderr)
		}
		rep, stderr, code := e.auditJSON("--no-probe", "--filter", filter)
		if code == 255 || code == 2 || !slices.Equal(rep.Nodes, pool1) {
			t.Errorf("audit: exit %d on %v, want %v\n%s", code, rep.Nodes, pool1, stderr)
		}
		out, stderr, code := e.run("inventory", "--list", "--filter", filter)
		var inv struct {
			Meta struct {
				HostVars map[string]any `json:"hostvars"`
			} `json:"_meta"`
		}
		if err := json.Unmarshal([]byte(out), &inv); err != nil || code != 0 || !slices.Equal(slices.Sorted(maps.Keys(inv.Meta.HostVars)), pool1) {
			t.Errorf("inventory: exit %d, %v, hosts %v, want %v\n%s", code, err, slices.Collect(maps.Keys(inv.Meta.HostVars)), pool1, stderr)
		}
		if _, stderr, code := e.run("config-ssh", "--filter", filter); code != 0 {
			t.Fatalf("config-ssh: exit %d\n%s", code, stderr)
		}
		b, _ := os.ReadFile(filepath.Join(e.home, ".ssh", "config"))
		if hosts := regexp.MustCompile(`(?m)^Host (.*)$`).FindAllStringSubmatch(string(b), -1); len(hosts) != 1 || hosts[0][1] != pool1[0] {
			t.Errorf("config-ssh wrote hosts %v, want %v", hosts, pool1)
		}
	})
	cfg := filepath.Join(e.home, ".ssh", "config")
	before, _ := os.ReadFile(cfg)
	cases := []struct {
		name, filter string
		want         string
	}{
		{"regular expression", "^gke-cluster-", "does not start with a field name"},
		{"a name", "gke-cluster-default-pool", "compares nothing"},
		{"glob", "gke-*", "compares nothing"},
		{"open parenthesis", "(labels.a = b", "a ( is not closed"},
		{"open string", `labels.a = "b`, "a string is not closed"},
		{"refused by the API", "name eq gke[", "Invalid list filter expression"},
	}
	for _, tc := range cases {
		for _, cmd := range [][]string{
			{"run", "--no-stdin", "--filter", tc.filter, "--", "true"},
			{"audit", "--no-probe", "--filter", tc.filter},
			{"config-ssh", "--filter", tc.filter},
			{"inventory", "--list", "--filter", tc.filter},
		} {
			t.Run(tc.name+"/"+cmd[0], func(t *testing.T) {
				t.Parallel()
				stdout, stderr, code := e.run(cmd...)
				if code != exitUsage || stdout != "" {
					t.Errorf("exit %d, stdout %q; want %d and nothing", code, stdout, exitUsage)
				}
				glob := cmd[0] == "config-ssh" || cmd[0] == "inventory"
				for _, w := range []string{"--filter " + strconv.Quote(tc.filter) + " is not a Compute API list filter", tc.want,
					"labels.goog-k8s-node-pool-name=default-pool", map[bool]string{true: "--pattern 'gke-cluster-*'", false: "--filter 'name eq gke-cluster-.*'"}[glob],
					"See 'gkessh " + cmd[0] + " --help'"} {
					if !strings.Contains(stderr, w) {
						t.Errorf("stderr lacks %q:\n%s", w, stderr)
					}
				}
				if b, _ := os.ReadFile(cfg); !bytes.Equal(b, before) {
					t.Errorf("~/.ssh/config changed:\n%s", b)
				}
			})
		}
	}
}

// TestEmptySelectionMakesNoKey: from a HOME with no key, a fleet command
// whose selection matches nothing, or a copy to a node that does not
// exist, fails before it makes a key pair (it used to create
// ~/.ssh/google_compute_engine, announced, and then say that nothing
// matched).
func TestEmptySelectionMakesNoKey(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"run", []string{"run", "--no-stdin", "--cluster", "prod", "--", "true"}, "matches"},
		{"cp push", []string{"cp", "--pool", "nope", "selection_test.go", ":/tmp/"}, "matches"},
		{"cp pull", []string{"cp", "--filter", "labels.env=prod", ":/etc/hostname", "out"}, "matches"},
		{"scp to a missing node", []string{"scp", "selection_test.go", "nosuchnode:/tmp/"}, "no instance named nosuchnode"},
		{"run on a missing node", []string{"run", "--no-stdin", "nosuchnode", "--", "true"}, "nosuchnode: no such instance in project "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newParallelEnv(t, emulator.Config{Nodes: 2})
			_, stderr, code := e.run(tc.args...)
			if code != exitFailure || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d and %q:\n%s", code, exitFailure, tc.want, stderr)
			}
			for _, f := range []string{"google_compute_engine", "google_compute_engine.pub"} {
				if _, err := os.Stat(filepath.Join(e.home, ".ssh", f)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("~/.ssh/%s: %v, want none", f, err)
				}
			}
		})
	}
}

// TestMistypedNodeSuggested: a node name a few edits from a node's gets
// that node suggested, from run's per-node line as from a login.
func TestMistypedNodeSuggested(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 2})
	node := e.srv.Nodes()[0]
	typo := node[:len(node)-1]
	for _, args := range [][]string{
		{"run", "--no-stdin", typo, "--", "true"},
		{typo, "--", "true"},
	} {
		_, stderr, _ := e.run(args...)
		if want := "did you mean " + node + "?"; !strings.Contains(stderr, typo) || !strings.Contains(stderr, want) {
			t.Errorf("gkessh %s: stderr %q, want %q", strings.Join(args, " "), stderr, want)
		}
	}
}
