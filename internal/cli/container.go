package cli

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	"golang.org/x/term"

	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/shellquote"
)

// containerName is what --container takes: a container's name (Docker's
// grammar, which covers Kubernetes') or its ID. Nothing else reaches the
// node's shell or crictl's name pattern.
var containerName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) })

// checkContainer refuses a --container no container can have.
func checkContainer(name string) error {
	if !containerName().MatchString(name) {
		return usagef("--container %q: want a container's name or ID (letters, digits, _ . -)", name)
	}
	return nil
}

// usesCRI reports whether a node runs its containers under containerd, so
// that crictl, not docker, enters them: a GKE node (it carries kube-env or
// kube-labels) unless they say its runtime is docker, as GKE nodes before
// 1.24 could. Other Container-Optimized OS VMs run Docker.
func usesCRI(inst *gce.Instance) bool {
	if inst == nil {
		return false
	}
	labels, isLabels := gce.MetadataValue(inst.Metadata, "kube-labels")
	env, isEnv := gce.KubeEnv(inst.Metadata)
	if !isLabels && !isEnv {
		return false
	}
	for _, l := range strings.Split(labels, ",") {
		if l == "cloud.google.com/gke-container-runtime=docker" {
			return false
		}
	}
	return env["CONTAINER_RUNTIME"] != "docker"
}

// containerCommand is the node's command line that runs command in the
// container name, as gcloud's --container does (sudo docker exec -i[t]
// NAME COMMAND, /bin/sh without one) on a Docker node, and with crictl on
// a containerd one, where a name is looked up (crictl exec takes IDs) and
// several running containers of that name are refused. One word is shell
// syntax for the container's sh, as one word is for the node's shell in a
// login, unless it is plain words, which run as they are, as gcloud splits
// its --command ("ps aux"), so a container without a shell runs them too;
// several words run as they are.
func containerCommand(name string, command []string, tty, cri bool) string {
	args := command
	switch len(command) {
	case 0:
		args = []string{"/bin/sh"}
	case 1:
		args = strings.Fields(command[0])
		if len(args) == 0 || slices.ContainsFunc(args, func(w string) bool { return shellquote.Quote(w) != w }) {
			args = []string{"sh", "-c", command[0]}
		}
	}
	flags := "-i"
	if tty {
		flags = "-it"
	}
	q := shellquote.Quote(name)
	if !cri {
		return shellquote.Join(append([]string{"sudo", "docker", "exec", flags, name}, args...)...)
	}
	pattern := shellquote.Quote("^" + strings.ReplaceAll(name, ".", `\.`) + "$")
	return "set -- $(sudo crictl ps -q --name " + pattern + "); " +
		"if [ $# -gt 1 ]; then echo \"gkessh: $# running containers are named \"" + q + "\": pass one's ID to --container (sudo crictl ps --name \"" + pattern + "\")\" >&2; exit 1; fi; " +
		"exec sudo crictl exec " + flags + " \"${1:-" + q + "}\" " + shellquote.Join(args...)
}

// inContainer turns the login's command into one that runs in
// o.Container on inst's node, with a terminal when the command is a shell
// on a terminal, or -t asked for one.
func (o *login) inContainer(inst *gce.Instance, stdin any) {
	if o.Container == "" {
		return
	}
	in, _ := stdin.(*os.File)
	tty := o.ForceTTY || len(o.Command) == 0 && in != nil && term.IsTerminal(int(in.Fd()))
	o.Command = []string{containerCommand(o.Container, o.Command, tty, usesCRI(inst))}
	o.ForceTTY = tty
}
