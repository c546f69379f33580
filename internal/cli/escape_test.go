//go:build unix

package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/fleet"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/keys"
)

// TestRunAuditEscapes: free text that `run` and `audit` print from API
// answers, metadata and nodes (node names in line prefixes, failure
// reasons, instance status, finding evidence and fixes quoting metadata
// user names) shows terminal escapes escaped, as keys list does, so it
// cannot move the cursor, erase a line or reverse the text around it.
func TestRunAuditEscapes(t *testing.T) {
	const evil = "gke-n\x1b[1A\x1b[2K\u202e"
	runOut := func(o runOptions, names ...string) (*runOutput, *bytes.Buffer, *bytes.Buffer) {
		var out, errb bytes.Buffer
		return newRunOutput(Stdio{Out: &out, Err: &errb}, o, names), &out, &errb
	}
	for _, tt := range []struct {
		name  string
		print func(t *testing.T) string // returns what was printed
	}{
		{"run: node name prefixing lines", func(*testing.T) string {
			w, out, errb := runOut(runOptions{}, evil, "n1")
			stdout, stderr := w.writers(evil)
			stdout.Write([]byte("hi\nlast"))
			stderr.Write([]byte("oops\n"))
			w.done(fleet.Result{Node: evil, Status: fleet.OK})
			return out.String() + errb.String()
		}},
		{"run --group: node name in the block header", func(*testing.T) string {
			w, out, errb := runOut(runOptions{Group: true}, evil)
			_, stderr := w.writers(evil)
			stderr.Write([]byte("oops\n"))
			w.done(fleet.Result{Node: evil, Status: fleet.Failed, Exit: 1})
			return out.String() + errb.String()
		}},
		{"run: failure reason quoting the node", func(*testing.T) string {
			w, out, errb := runOut(runOptions{}, "n1")
			w.done(fleet.Result{Node: "n1", Status: fleet.Unreachable, Exit: fleet.NoExit, Err: errors.New("sshd said " + evil)})
			return out.String() + errb.String()
		}},
		{"run: status of a skipped instance", func(*testing.T) string {
			w, out, errb := runOut(runOptions{}, "n1")
			w.skipped(&gce.Instance{Name: evil, Zone: "zones/us-west1-a", Status: "STOPPED" + evil})
			return out.String() + errb.String()
		}},
		{"run: summary", func(*testing.T) string {
			return runSummary([]fleet.Result{{Node: evil, Status: fleet.Failed, Exit: 3}, {Node: "n1", Status: fleet.Cancelled, Err: errors.New(evil)}},
				[]*gce.Instance{{Name: evil, Status: "STOPPED" + evil}})
		}},
		{"audit: metadata user name in evidence and fixes", func(t *testing.T) string {
			e := newTestEnv(t, emulator.Config{Nodes: 1})
			line := keys.FormatExpiringLine(evil, testkey.Public(t), time.Now().Add(-time.Hour)) + "\n" + keys.FormatLine(evil, testkey.Public(t), "")
			if err := e.srv.SetProjectMetadata(map[string]*string{"ssh-keys": &line}); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, _ := e.run("audit", "--all", "--no-probe")
			if !strings.Contains(stdout, "keys-expired") || !strings.Contains(stdout, "project-keys-sudo") {
				t.Fatalf("the audit lacks the key findings:\n%s\n%s", stdout, stderr)
			}
			return stdout + stderr
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.print(t)
			if strings.ContainsAny(got, "\x1b\u202e") || !strings.Contains(got, `gke-n\x1b[1A\x1b[2K\u202e`) {
				t.Errorf("printed raw, or not at all:\n%q", got)
			}
		})
	}
}
