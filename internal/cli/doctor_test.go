package cli

import (
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

func TestDoctor(t *testing.T) {
	e := newTestEnv(t, emulator.Config{Nodes: 2})
	names := e.srv.Nodes()
	e.srv.Node(names[1]).SetFirewall(false)
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"project only", []string{"doctor"}, 0, []string{"ok    project demo-project", "does not exist yet", "compute API: project demo-project readable"}},
		{"healthy node", []string{"doctor", names[0]}, 0, []string{"is RUNNING", "host keys: " + names[0] + " published", "IAP tunnel to " + names[0] + ":22: SSH-2.0-"}},
		{"firewall closed", []string{"doctor", names[1]}, exitError1, []string{"FAIL  IAP tunnel to " + names[1] + ":22", "35.235.240.0/20"}},
		{"missing node", []string{"doctor", "gke-nope"}, exitError1, []string{"FAIL  instance"}},
		{"two nodes", []string{"doctor", "a", "b"}, exitUsage, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := e.run(tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out+errOut, e.srv.Token()) {
				t.Fatal("doctor printed the access token")
			}
		})
	}
}
