package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/internal/gce"
	"github.com/gkessh/gkessh/internal/shellquote"
)

func inventoryCommand(d *deps, stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:  "inventory",
		Usage: "print an Ansible dynamic inventory of the project's nodes",
		Description: "Groups nodes by zone (zone_us_west1_a), GKE cluster (cluster_NAME), node pool\n" +
			"(pool_NAME) and label (label_KEY_VALUE). Host variables carry the ssh options that go\n" +
			"through 'gkessh proxy', so Ansible needs no ssh config. Published host keys are pinned\n" +
			"in ~/.ssh/google_compute_known_hosts. Use it through a two-line wrapper script:\n" +
			"  #!/bin/sh\n  exec gkessh inventory \"$@\"\n" +
			"Unix only: Ansible's controller does not run on Windows (use WSL).",
		Flags: append(openSSHFlags(),
			&ucli.BoolFlag{Name: "list", Usage: "print every group and host (what Ansible asks for)"},
			&ucli.StringFlag{Name: "host", Usage: "print one host's variables"},
			&ucli.StringFlag{Name: "pattern", Usage: "only the instances whose names this glob matches (e.g. 'gke-cluster-*')"},
		),
		Action: func(c *ucli.Context) error {
			if runtime.GOOS == "windows" {
				return errors.New("inventory is Unix only: Ansible's controller does not run on Windows; run Ansible and gkessh in WSL")
			}
			o, err := openSSHFlagValues(c)
			if err != nil {
				return err
			}
			return runInventory(c.Context, inventoryOptions{openSSHOptions: o, Host: c.String("host")}, d, stdio)
		},
	}
}

// inventoryOptions are the flags of inventory.
type inventoryOptions struct {
	openSSHOptions
	Host string // print this host's variables; "" for --list
}

// runInventory prints the inventory, or one host's variables.
func runInventory(ctx context.Context, o inventoryOptions, d *deps, stdio Stdio) error {
	inv, err := buildInventory(ctx, o.openSSHOptions, d, stdio.Err)
	if err != nil {
		return err
	}
	var out any = inv
	if o.Host != "" {
		vars := inv.Meta.HostVars[o.Host]
		if vars == nil {
			vars = map[string]any{} // Ansible wants an object for an unknown host
		}
		out = vars
	}
	enc := json.NewEncoder(stdio.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// inventory is the JSON an Ansible inventory script prints for --list:
// groups by name, plus _meta.hostvars so Ansible never calls --host.
type inventory struct {
	Meta   inventoryMeta
	Groups map[string]*inventoryGroup
}

type inventoryMeta struct {
	HostVars map[string]map[string]any `json:"hostvars"`
}

type inventoryGroup struct {
	Hosts    []string `json:"hosts,omitempty"`
	Children []string `json:"children,omitempty"`
}

// MarshalJSON flattens the groups next to _meta, as Ansible expects.
func (inv inventory) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(inv.Groups)+1)
	for name, g := range inv.Groups {
		m[name] = g
	}
	m["_meta"] = inv.Meta
	return json.Marshal(m)
}

func buildInventory(ctx context.Context, o openSSHOptions, d *deps, warn io.Writer) (inventory, error) {
	route, err := proxyRouteOf(d, o)
	if err != nil {
		return inventory{}, err
	}
	plans, err := listNodes(ctx, o, d, Stdio{Err: warn}, warn, false)
	if err != nil {
		return inventory{}, err
	}
	inv := inventory{Meta: inventoryMeta{HostVars: map[string]map[string]any{}}, Groups: map[string]*inventoryGroup{}}
	add := func(group, host string) {
		g := inv.Groups[group]
		if g == nil {
			g = &inventoryGroup{}
			inv.Groups[group] = g
		}
		g.Hosts = append(g.Hosts, host)
	}
	for _, p := range plans {
		inv.Meta.HostVars[p.Node.Name] = route.hostVars(p.Node, p.User)
		for _, g := range groupsOf(p.Node, p.Inst, warn) {
			add(g, p.Node.Name)
		}
	}
	all := &inventoryGroup{Children: []string{"ungrouped"}}
	for name := range inv.Groups {
		all.Children = append(all.Children, name)
	}
	sort.Strings(all.Children[1:])
	inv.Groups["all"] = all
	return inv, nil
}

// hostVars reaches r through gkessh proxy: the user and key as Ansible's own
// variables, every other option in ansible_ssh_common_args.
func (p proxyRoute) hostVars(r access.Node, user string) map[string]any {
	vars := map[string]any{
		"ansible_host": r.Name,
		"gce_project":  r.Project,
		"gce_zone":     r.Zone,
		"gce_id":       fmt.Sprint(r.ID),
	}
	var args []string
	for _, kv := range p.sshOptions(r, user) {
		switch kv[0] {
		case "HostName":
		case "User":
			vars["ansible_user"] = kv[1]
		case "IdentityFile":
			vars["ansible_ssh_private_key_file"] = p.keyFile // Ansible quotes it for ssh
		default:
			args = append(args, "-o "+shellquote.Quote(kv[0]+"="+kv[1]))
		}
	}
	vars["ansible_ssh_common_args"] = strings.Join(args, " ")
	// Ansible's ssh gives up on a server's banner after 10 s by default,
	// and the proxy hands ssh the stream only once the guest has taken a
	// new key, for up to its propagation timeout: the first run after a
	// new key found slow nodes UNREACHABLE. The proxy ends at once on its
	// own failures, so the longer wait only covers a slow guest.
	vars["ansible_ssh_timeout"] = strconv.Itoa(int((defaultPropagationTimeout + 30*time.Second).Seconds()))
	return vars
}

var groupUnsafe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^A-Za-z0-9_]`) })

// groupName makes an Ansible-safe group name: letters, digits, underscores.
func groupName(parts ...string) string {
	return groupUnsafe().ReplaceAllString(strings.Join(parts, "_"), "_")
}

// groupsOf lists the groups a node belongs to: its zone, its GKE cluster and
// node pool (from the labels GKE sets), and each label. A label outside
// GCE's grammar is left out with a line on warn.
func groupsOf(r access.Node, inst *gce.Instance, warn io.Writer) []string {
	groups := []string{groupName("zone", r.Zone)}
	labels := map[string]string{}
	for k, v := range inst.Labels {
		if err := gce.CheckLabel(k, v); err != nil {
			fmt.Fprintf(warn, "gkessh: instance %s: skipping a label: %v\n", r.Name, err)
			continue
		}
		labels[k] = v
	}
	c := labels["goog-k8s-cluster-name"]
	if c == "" {
		c, _ = gce.MetadataValue(inst.Metadata, "cluster-name") // older GKE nodes
		if err := gce.CheckLabel("cluster-name", c); err != nil {
			fmt.Fprintf(warn, "gkessh: instance %s: skipping its cluster-name metadata: %v\n", r.Name, err)
			c = ""
		}
	}
	if c != "" {
		groups = append(groups, groupName("cluster", c))
	}
	if p := labels["goog-k8s-node-pool-name"]; p != "" {
		groups = append(groups, groupName("pool", p))
	}
	for k, v := range labels {
		groups = append(groups, groupName("label", k, v))
	}
	sort.Strings(groups[1:])
	return groups
}
