//go:build unix

package cli

import (
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// TestEmptySelection: a selection that matches no RUNNING node is an
// error (exit 255) naming the selection and saying what the project has,
// for run and audit; a selection that matches nodes still works. A typo in
// --cluster must not turn CI green. (issue 20 item 2; before, each of
// these exited 0 having done nothing)
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
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := e.run(tc.args...)
			if code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
	t.Run("a match still works", func(t *testing.T) {
		for _, args := range [][]string{
			{"run", "--no-stdin", "--cluster", "cluster", "--pool", "pool-1", "--", "true"},
			{"audit", "--no-probe", "--pool", "pool-1", "--fail-on", "high", "--format", "json"},
		} {
			if _, stderr, code := e.run(args...); code != 0 && code != 1 {
				t.Errorf("%v: exit %d\n%s", args, code, stderr)
			}
		}
	})
}
