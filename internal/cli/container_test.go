//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/internal/gce"
)

// TestSSHContainer: --container runs the command in the container as
// gcloud's does, through docker on a VM and crictl on a GKE node, where
// the name is looked up and an ambiguous one refused. The node runs
// stand-ins for sudo, docker and crictl that print what they were given.
func TestSSHContainer(t *testing.T) {
	bin := t.TempDir()
	for name, script := range map[string]string{
		"sudo":   `exec "$@"`,
		"docker": `printf docker; printf ' <%s>' "$@"; echo`,
		"crictl": `if [ "$1" = ps ]; then case "$*" in *'^app$'*) echo abc123;; *'^twin$'*) printf 'aaa\nbbb\n';; esac; exit 0; fi
printf crictl; printf ' <%s>' "$@"; echo`,
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH")) // the node's sessions get it
	e := newSSHTestEnv(t, "builtin", 1)
	gke := e.node(0).Name
	vm, err := e.srv.AddNode("cos-vm", e.node(0).Zone)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"GKE node, words", []string{"--container", "app", gke, "--", "ls", "-l", "/"}, 0, "crictl <exec> <-i> <abc123> <ls> <-l> </>\n", ""},
		{"GKE node, one word of plain words", []string{"--container", "app", "--command", "ps aux", gke}, 0, "crictl <exec> <-i> <abc123> <ps> <aux>\n", ""},
		{"GKE node, one word of shell syntax", []string{"--container", "app", "--command", "echo $HOME | wc", gke}, 0, "crictl <exec> <-i> <abc123> <sh> <-c> <echo $HOME | wc>\n", ""},
		{"GKE node, a shell", []string{"--container", "app", gke}, 0, "crictl <exec> <-i> <abc123> </bin/sh>\n", ""},
		{"GKE node, -t", []string{"--container", "app", "-t", gke, "--", "top"}, 0, "crictl <exec> <-it> <abc123> <top>\r\n", ""},
		{"GKE node, an ID", []string{"--container", "0f1e2d", gke, "--", "id"}, 0, "crictl <exec> <-i> <0f1e2d> <id>\n", ""},
		{"GKE node, two of that name", []string{"--container", "twin", gke, "--", "id"}, 1, "", "gkessh: 2 running containers are named twin: pass one's ID to --container"},
		{"VM, as gcloud", []string{"--container", "app", vm.Name, "--", "ls", "/"}, 0, "docker <exec> <-i> <app> <ls> </>\n", ""},
		{"VM, a shell", []string{"--container", "app", vm.Name}, 0, "docker <exec> <-i> <app> </bin/sh>\n", ""},
		{"no such name", []string{"--container", "a;b", gke}, 255, "", `--container "a;b": want a container's name or ID`},
		{"with -N", []string{"--container", "app", "-N", gke}, 255, "", "-N runs no command, so nothing would run in --container app"},
		{"dry run", []string{"--dry-run", "--container", "app", gke, "--", "id"}, 0, "", ""},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			stdout, stderr, code := e.run(tc.args...)
			if tc.name == "dry run" {
				if want := `and run "set -- $(sudo crictl ps -q --name '^app$');`; code != 0 || !strings.Contains(stdout, want) {
					t.Errorf("exit %d, stdout lacks %q:\n%s%s", code, want, stdout, stderr)
				}
				return
			}
			if code != tc.code || stdout != tc.stdout || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant %d, %q, stderr with %q", code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

// TestUsesCRI: crictl on a GKE node unless its kube-labels or kube-env
// say docker, in GKE's plain form or kube-up's quoted one.
func TestUsesCRI(t *testing.T) {
	node := func(items ...string) *gce.Instance {
		md := &gce.Metadata{}
		for i := 0; i+1 < len(items); i += 2 {
			md.Items = append(md.Items, &gce.MetadataItems{Key: items[i], Value: &items[i+1]})
		}
		return &gce.Instance{Metadata: md}
	}
	for _, tc := range []struct {
		name string
		inst *gce.Instance
		want bool
	}{
		{"no instance", nil, false},
		{"a VM", node("startup-script", "true"), false},
		{"GKE, containerd", node("kube-env", "CLUSTER_NAME: c\nCONTAINER_RUNTIME: containerd\n"), true},
		{"GKE, runtime unsaid", node("kube-env", "CLUSTER_NAME: c\n"), true},
		{"GKE, labels only", node("kube-labels", "cloud.google.com/gke-nodepool=p"), true},
		{"GKE, docker label", node("kube-labels", "cloud.google.com/gke-container-runtime=docker", "kube-env", ""), false},
		{"GKE, docker in kube-env", node("kube-env", "CONTAINER_RUNTIME: docker\n"), false},
		{"GKE, docker in kube-env quoted", node("kube-env", "CONTAINER_RUNTIME: 'docker'\n"), false},
		{"GKE, docker in kube-env, CRLF", node("kube-env", "CONTAINER_RUNTIME: docker\r\n"), false},
	} {
		if got := usesCRI(tc.inst); got != tc.want {
			t.Errorf("%s: usesCRI = %v, want %v", tc.name, got, tc.want)
		}
	}
}
