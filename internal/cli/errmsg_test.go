//go:build unix

package cli

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// TestErrorMessagesOneCause: a failed login ends in one line that states
// its cause once and what to do, with or without -v: no repeated "gce:" or
// "iap:" layer, resource path or permission name.
func TestErrorMessagesOneCause(t *testing.T) {
	e := newSSHTestEnv(t, "builtin", 1)
	n := e.node(0)
	project := e.srv.ProjectName()
	useToken := func(tok string, perms ...string) {
		if tok != "unknown" {
			e.srv.AddGrant(tok, emulator.Grant{Principal: "ops@example.com", Projects: []string{project}, Permissions: perms})
		}
		if err := os.WriteFile(filepath.Join(e.home, "token"), []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const iapPerm = "iap.tunnelInstances.accessViaIAP"
	tests := []struct {
		name  string
		setup func()
		node  string
		want  []string // each once in the error line
	}{
		{"no such node", nil, "nosuch", []string{"no instance named nosuch", "check the name"}},
		{"a mistyped node", nil, n.Name[:len(n.Name)-1], []string{"no instance named " + n.Name[:len(n.Name)-1], "did you mean " + n.Name + "?"}},
		{"unknown token", func() { useToken("unknown") }, n.Name, []string{"not authenticated (401)", "gcloud auth login"}},
		{"no metadata rights", func() { useToken("read-only", iapPerm) }, n.Name,
			[]string{"permission denied: needs compute.instances.setMetadata (403)", "iam.serviceAccounts.actAs"}},
		{"no actAs", func() { useToken("no-actas", "compute.instances.setMetadata", iapPerm) }, n.Name,
			[]string{"permission denied: needs iam.serviceAccounts.actAs on projects/" + project + "/serviceAccounts/", "roles/iam.serviceAccountUser"}},
		{"no tunnel rights", func() { useToken("no-iap", "compute.projects.setCommonInstanceMetadata") }, n.Name,
			[]string{"4033", "roles/iap.tunnelResourceAccessor"}},
		{"firewall closed", func() { n.SetFirewall(false) }, n.Name, []string{"4003", "firewall rule"}},
		{"stopped", func() { n.SetStatus("TERMINATED") }, n.Name, []string{"TERMINATED", "gcloud compute instances start"}},
	}
	for _, tt := range tests {
		for _, verbose := range []bool{false, true} {
			name := tt.name
			if verbose {
				name += "/-v"
			}
			t.Run(name, func(t *testing.T) {
				useToken(e.srv.Token())
				n.SetFirewall(true)
				if err := n.SetStatus("RUNNING"); err != nil {
					t.Fatal(err)
				}
				os.RemoveAll(filepath.Join(e.home, ".ssh"))
				if tt.setup != nil {
					tt.setup()
				}
				args := []string{tt.node, "--", "true"}
				if verbose {
					args = append([]string{"-v"}, args...)
				}
				_, stderr, code := e.run(args...)
				lines := strings.Split(strings.TrimSpace(stderr), "\n")
				last := lines[len(lines)-1]
				if code != 255 || !strings.HasPrefix(last, "gkessh: ") {
					t.Fatalf("exit %d, stderr:\n%s", code, stderr)
				}
				for _, want := range tt.want {
					if c := strings.Count(last, want); c != 1 {
						t.Errorf("%q appears %d times in %q", want, c, last)
					}
				}
				for _, s := range []string{"gce:", "iap:", "ssh:", project + "/", "instances/" + n.Name,
					"compute.instances.setMetadata", "compute.projects.setCommonInstanceMetadata", "iam.serviceAccounts.actAs"} {
					if c := strings.Count(last, s); c > 1 {
						t.Errorf("%q repeats %d times in %q", s, c, last)
					}
				}
			})
		}
	}
}

// TestDeadEndpoint: an endpoint nothing answers at is reported in one
// line naming it and the setting that chose it, with what to do, and not
// as the API call's URL and socket error ("Get …: dial tcp …").
func TestDeadEndpoint(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	n := e.node(0)
	const dead = "127.0.0.1:1"
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"compute, by variable", map[string]string{"GKESSH_COMPUTE_ENDPOINT": "http://" + dead + "/compute/v1/"}, []string{n.Name, "--", "true"},
			"gkessh: cannot reach the compute API at http://" + dead + "/compute/v1/ (set by GKESSH_COMPUTE_ENDPOINT): connection refused: " +
				`start the server it names (the emulator: eval "$(gce-emulator --background)"), or correct GKESSH_COMPUTE_ENDPOINT`},
		{"compute, by flag", nil, []string{"--compute-endpoint", "http://" + dead + "/compute/v1/", "run", "--all", "--", "true"},
			"gkessh: cannot reach the compute API at http://" + dead + "/compute/v1/ (set by --compute-endpoint): connection refused: " +
				`start the server it names (the emulator: eval "$(gce-emulator --background)"), or correct --compute-endpoint`},
		{"relay", map[string]string{"GKESSH_IAP_ENDPOINT": "ws://" + dead}, []string{n.Name, "--", "true"},
			"gkessh: cannot reach the IAP relay at ws://" + dead + " (set by GKESSH_IAP_ENDPOINT): connection refused: " +
				`start the server it names (the emulator: eval "$(gce-emulator --background)"), or correct GKESSH_IAP_ENDPOINT`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.vars = nil
			for k, v := range tt.vars {
				e.setenv(k, v)
			}
			_, stderr, code := e.run(tt.args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if last := lines[len(lines)-1]; code != 255 || last != tt.want {
				t.Errorf("exit %d, last line\n%s\nwant\n%s\n(stderr:\n%s)", code, last, tt.want, stderr)
			}
		})
	}
}

// TestTokenFileFirst: an access token file that cannot be read is the
// first and only thing reported, naming the file and its setting: not an
// instance lookup's failure, and nothing done before it (no key made).
func TestTokenFileFirst(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	n := e.node(0)
	missing := filepath.Join(e.home, "missing")
	for _, args := range [][]string{{n.Name, "--", "true"}, {"run", "--all", "--", "true"}, {"keys", "ensure"}} {
		t.Run(args[0], func(t *testing.T) {
			e.setenv("GKESSH_ACCESS_TOKEN_FILE", missing)
			_, stderr, code := e.run(args...)
			want := "gkessh: cannot read the access token file " + missing + " (set by GKESSH_ACCESS_TOKEN_FILE): no such file or directory: " +
				"point GKESSH_ACCESS_TOKEN_FILE at a file holding an access token, or leave it unset to use gcloud's login or Application Default Credentials\n"
			if code == 0 || stderr != want {
				t.Errorf("exit %d, stderr\n%s\nwant\n%s", code, stderr, want)
			}
			if _, err := os.Stat(filepath.Join(e.home, ".ssh")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("~/.ssh made before the credentials were found missing: %v", err)
			}
		})
	}
}
