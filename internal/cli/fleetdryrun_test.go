//go:build unix

package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// TestFleetDryRun: run and audit with --dry-run say what they would write
// and where they would log in and run, and log in nowhere; audit still
// reports what the API shows, its JSON intact on stdout.
func TestFleetDryRun(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 2})
	nodes := e.srv.Nodes()
	if err := e.srv.SetInstanceMetadata(nodes[1], map[string]*string{"block-project-ssh-keys": new("TRUE")}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name           string
		args           []string
		stdout, stderr []string
	}{
		{"run", []string{"run", "--dry-run", "--user", "tester", "--all", "--", "uname", "-a"}, []string{
			"would create key pair ",
			nodes[0] + `: would run "uname -a" as tester through an IAP tunnel to port 22`,
			nodes[1] + `: would run "uname -a" as tester through an IAP tunnel to port 22`,
		}, nil},
		{"audit", []string{"--dry-run", "audit", "--user", "tester", "--all", "--format", "json"}, nil, []string{
			"would create key pair ",
			nodes[0] + ": would log in as tester through an IAP tunnel to port 22 and check",
			"0 checked live (the checks only read; --dry-run: no key line was written and no node logged in to)",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := e.run(tc.args...)
			if code != 0 && !(tc.name == "audit" && code == 1) {
				t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if tc.name == "audit" && !json.Valid([]byte(stdout)) {
				t.Errorf("stdout is not JSON:\n%s", stdout)
			}
			if s := e.srv.Stats(); s.MetadataWrites != 0 || s.Tunnels != 0 {
				t.Errorf("dry run changed something: %d metadata writes, %d tunnels", s.MetadataWrites, s.Tunnels)
			}
		})
	}
}
