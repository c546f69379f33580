package audit

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gkessh/gkessh/internal/firewall"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/shellquote"
	"github.com/gkessh/gkessh/keys"
)

// A finding's fixes are command lines for a person to paste, in gcloud's
// grammar and in gkessh's own: this file is the one place a library names
// gkessh's commands and flags, because a remedy is a command. Every value
// that came from the API or from metadata is one quoted word, and what is
// not part of the command follows it as a shell comment, so that pasting a
// fix runs that command and nothing else, whatever a project member put in
// a user name, a label or a rule name.

// fixLine quotes words into a command line, with note as a comment after
// it. A word a terminal would not show as it is (a control character, a
// bidirectional override: metadata or the API is hostile) cannot be pasted
// as read, so the fix becomes a comment saying so.
func fixLine(note string, words ...string) string {
	line, ok := shellquote.Line(words...)
	if !ok {
		return "# a " + strings.Join(words[:min(len(words), 3)], " ") + " command is not shown: a value in it holds characters a terminal would hide"
	}
	if note != "" {
		line += "  # " + note
	}
	return line
}

// fixKubeletPort turns the read-only port off for the node's cluster (new
// node pools) and its pool; inUse puts first what must happen before.
func fixKubeletPort(g gke, inUse bool) []string {
	var fix []string
	if inUse {
		fix = append(fix, "# first move the clients still using port 10255 to the authenticated port 10250, then:")
	}
	fix = append(fix, fixLine("", "gcloud", "container", "clusters", "update", g.cluster, "--location="+g.location, "--no-enable-insecure-kubelet-readonly-port"))
	if g.pool != "" {
		fix = append(fix, fixLine("", "gcloud", "container", "node-pools", "update", g.pool, "--cluster="+g.cluster, "--location="+g.location, "--no-enable-insecure-kubelet-readonly-port"))
	}
	return fix
}

// fixOpenSSH narrows the rule that lets the internet in to IAP's range.
func fixOpenSSH(rule string) string {
	return fixLine("", "gcloud", "compute", "firewall-rules", "update", rule, "--source-ranges="+iapSource)
}

// IAPRuleFix is the command that lets IAP reach port on network, placed
// before the deny rule of v when one blocks it.
func IAPRuleFix(network string, port int, v firewall.Verdict) string {
	words := []string{"gcloud", "compute", "firewall-rules", "create", "allow-ssh-ingress-from-iap", "--network=" + network,
		"--direction=INGRESS", "--action=allow", "--rules=tcp:" + strconv.Itoa(port), "--source-ranges=" + iapSource}
	if v.Rule != nil {
		name := "allow-iap-before-" + v.Rule.Name
		words[4] = strings.TrimRight(name[:min(len(name), 63)], "-")
		words = append(words, fmt.Sprintf("--priority=%d", max(v.Rule.Priority-1, 0)))
	}
	return fixLine("", words...)
}

// fixDenyPodSSH keeps the cluster's pods off its nodes' sshd with a deny
// rule just before the rule that lets them in.
func fixDenyPodSSH(cluster, network string, pods netip.Prefix, priority int64, tag string) string {
	words := []string{"gcloud", "compute", "firewall-rules", "create", "gke-" + cluster + "-deny-pod-ssh", "--network=" + network,
		"--direction=INGRESS", "--action=deny", "--rules=tcp:22", "--source-ranges=" + pods.String(), fmt.Sprintf("--priority=%d", max(priority-1, 0))}
	if tag != "" {
		words = append(words, "--target-tags="+tag)
	}
	return fixLine("", words...)
}

// fixOSLogin removes the node's own enable-oslogin, so that it follows the
// project's OS Login. A GKE node pool sets the value on the nodes it
// makes, so a node it recreates carries it again.
func fixOSLogin(inst *gce.Instance) []string {
	fix := []string{fixLine("", "gcloud", "compute", "instances", "remove-metadata", inst.Name, "--zone="+gce.ZoneName(inst.Zone), "--keys=enable-oslogin")}
	if g, ok := gkeOf(inst); ok && g.pool != "" {
		fix = append(fix, "# node pool "+g.pool+" sets enable-oslogin=false on the nodes it makes, again when it recreates one: "+
			"move its workloads to a pool whose nodes follow the project's OS Login (GKE Standard; see Google's \"Enable and configure OS Login in GKE\")")
	}
	return fix
}

// fixReviewOSLoginIAM lists who holds sudo on the project's nodes under
// OS Login: the members of roles/compute.osAdminLogin.
func fixReviewOSLoginIAM(proj *gce.Project) []string {
	if proj == nil || proj.Name == "" {
		return nil
	}
	return []string{
		"# who may log in is who holds roles/compute.osLogin or roles/compute.osAdminLogin (sudo), on the project or the instance; the project's sudo holders:",
		fixLine("", "gcloud", "projects", "get-iam-policy", proj.Name, "--flatten=bindings[].members",
			"--filter=bindings.role:roles/compute.osAdminLogin", "--format=value(bindings.members)"),
	}
}

// fixBlockProjectKeys makes inst ignore project-wide keys.
func fixBlockProjectKeys(inst *gce.Instance) string {
	return fixLine("", "gcloud", "compute", "instances", "add-metadata", inst.Name, "--zone="+gce.ZoneName(inst.Zone), "--metadata=block-project-ssh-keys=TRUE")
}

// fixRemoveKeys removes user's lines from the metadata of scope (node's
// own for instance scope); note says what follows.
func fixRemoveKeys(scope, user, node, note string) string {
	words := []string{"gkessh", "keys", "remove", "--scope", scope, "--user", user}
	if scope == keys.ScopeInstance {
		words = append(words, node)
	}
	return fixLine(note, words...)
}

// fixPruneExpired removes every expired line (node's own, if node is set).
func fixPruneExpired(node string) string {
	words := []string{"gkessh", "keys", "prune", "--all-expired"}
	if node != "" {
		words = append(words, node)
	}
	return fixLine("", words...)
}

// fixLegacySSHKeys removes the legacy sshKeys item, project-wide or from
// instance.
func fixLegacySSHKeys(instance string) string {
	const note = "move its lines to ssh-keys first"
	if instance == "" {
		return fixLine(note, "gcloud", "compute", "project-info", "remove-metadata", "--keys=sshKeys")
	}
	return fixLine(note, "gcloud", "compute", "instances", "remove-metadata", instance, "--keys=sshKeys")
}
