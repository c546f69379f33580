//go:build unix

package cli

import (
	"strings"
	"testing"
)

// TestSSHTroubleshoot: gkessh NODE --troubleshoot prints doctor's checks
// for the node, with doctor's exit status, and writes nothing; what doctor
// would not honour is refused.
func TestSSHTroubleshoot(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 2)
	n, down := e.node(0), e.node(1)
	if err := down.SetSSHD(false); err != nil {
		t.Fatal(err)
	}
	checks := func(out string) []string {
		var words []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			w, rest, _ := strings.Cut(l, " ")
			rest, _, _ = strings.Cut(strings.TrimSpace(rest), " ")
			words = append(words, w+" "+rest)
		}
		return words
	}
	doctorOut, _, _ := e.run("doctor", n.Name)
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"a node that works", []string{n.Name, "--troubleshoot"}, 0, []string{"ok    IAP tunnel to " + n.Name + ":22"}, ""},
		{"gcloud's recommended line", []string{n.Name, "--zone", n.Zone, "--troubleshoot", "--tunnel-through-iap"}, 0, []string{"ok    instance demo-project/" + n.Zone + "/" + n.Name + " is RUNNING"}, ""},
		{"a node whose sshd is down", []string{"--troubleshoot", down.Name}, 1, []string{"FAIL  IAP tunnel to " + down.Name + ":22"}, ""},
		{"a command", []string{"--troubleshoot", n.Name, "--", "id"}, 255, nil, `--troubleshoot runs gkessh doctor's checks and no command: drop "id"`},
		{"--internal-ip", []string{"--troubleshoot", "--internal-ip", n.Name}, 255, nil, "so --internal-ip would do nothing"},
		{"a key lifetime", []string{"--troubleshoot", "--key-expire-after", "1h", n.Name}, 255, nil, "so --key-expire-after would do nothing"},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			writes := e.srv.Stats().MetadataWrites
			stdout, stderr, code := e.run(tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, stderr:\n%s\nwant %d, stderr with %q", code, stderr, tc.code, tc.stderr)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if tc.code == 0 && strings.Join(checks(stdout), "\n") != strings.Join(checks(doctorOut), "\n") {
				t.Errorf("not doctor's checks:\n%s\ndoctor %s:\n%s", stdout, n.Name, doctorOut)
			}
			if got := e.srv.Stats().MetadataWrites; got != writes {
				t.Errorf("wrote metadata %d times", got-writes)
			}
		})
	}
}
