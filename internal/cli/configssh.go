package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/gkessh/gkessh/internal/access"
	"github.com/gkessh/gkessh/keys"
	"github.com/gkessh/gkessh/sshconfig"
)

// configSSHOptions are the flags of config-ssh.
type configSSHOptions struct {
	openSSHOptions
	Path    string // the ssh config file
	Pattern string // one wildcard Host entry instead of one per instance
	Remove  bool
}

func configSSHCommand(d *deps, stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:  "config-ssh",
		Usage: "write a managed block to ~/.ssh/config so ssh, scp, rsync and Ansible reach nodes through gkessh",
		Description: "Writes one Host entry per RUNNING instance (or, with --pattern, one wildcard entry) with\n" +
			"ProxyCommand 'gkessh proxy', and pins each node's published host keys in\n" +
			"~/.ssh/google_compute_known_hosts. Each project has its own block: a run for another project\n" +
			"leaves it, and --remove takes out only the project's. Everything outside the blocks stays as it is.",
		Flags: append(openSSHFlags(),
			&ucli.StringFlag{Name: "ssh-config-file", Usage: "ssh config file (default ~/.ssh/config)"},
			&ucli.StringFlag{Name: "pattern", Usage: "write one Host entry for the names this glob matches (e.g. 'gke-cluster-*') instead of one per instance"},
			&ucli.BoolFlag{Name: "remove", Usage: "remove the project's managed block"},
		),
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				return usagef("config-ssh takes no arguments")
			}
			o, err := openSSHFlagValues(c)
			if err != nil {
				return err
			}
			opts := configSSHOptions{openSSHOptions: o, Path: c.String("ssh-config-file"), Pattern: o.Selector.Pattern, Remove: c.Bool("remove")}
			if strings.IndexAny(opts.Pattern, "*?") == 0 {
				// A Host entry that starts with a wildcard catches hosts
				// that are no nodes (Host * catches every ssh: github.com
				// would go through gkessh proxy).
				return usagef("--pattern %q starts with a wildcard, so its Host entry would catch other hosts than the nodes: start it with the names' prefix, such as gke-cluster-*", opts.Pattern)
			}
			if opts.Remove && opts.ForceOverwrite {
				return usagef("--remove and --force-key-file-overwrite: removing the block leaves the key files alone; give one")
			}
			return runConfigSSH(c.Context, opts, d, stdio)
		},
	}
}

func runConfigSSH(ctx context.Context, o configSSHOptions, d *deps, stdio Stdio) error {
	if o.Path == "" {
		var err error
		if o.Path, err = d.sshConfig(); err != nil {
			return err
		}
	}
	old, err := os.ReadFile(o.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err // os.ReadFile names the file
	}
	if o.ForceOverwrite {
		if err := replaceBrokenKey(o.openSSHOptions, d, stdio); err != nil {
			return err
		}
	}
	// One block per project: another project's run leaves this one's.
	project, err := projectOf(d, o.globalOptions)
	if err != nil {
		return err
	}
	var updated []byte
	if o.Remove {
		var found bool
		updated, found, err = sshconfig.Remove(old, project)
		if err == nil && !found {
			fmt.Fprintf(stdio.Err, "%s has no managed block for project %s: nothing to remove.\n", o.Path, project)
			return nil
		}
	} else {
		var hosts []sshconfig.Host
		if hosts, err = configHosts(ctx, o, d, stdio); err != nil {
			return err
		}
		updated, err = sshconfig.Merge(old, project, sshconfig.Render(project, hosts))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", o.Path, err)
	}
	if bytes.Equal(old, updated) {
		fmt.Fprintf(stdio.Err, "%s is up to date for project %s.\n", o.Path, project)
		return nil
	}
	if o.DryRun {
		oldBlock, _ := sshconfig.Block(old, project)
		var newBlock []byte
		if !o.Remove {
			newBlock, _ = sshconfig.Block(updated, project)
		}
		fmt.Fprintf(stdio.Out, "--- %s\n+++ %s\n", o.Path, o.Path)
		stdio.Out.Write(blockDiff(oldBlock, newBlock))
		return nil
	}
	if err := sshconfig.WriteFile(o.Path, updated); err != nil {
		return err
	}
	verb := "Updated"
	if o.Remove {
		verb = "Removed"
	}
	fmt.Fprintf(stdio.Err, "%s the managed block for project %s in %s.\n", verb, project, o.Path)
	return nil
}

// hosts are the managed block's entries: one per node, or with --pattern
// one wildcard entry whose host keys are pinned under the node names, since
// one HostKeyAlias cannot fit every node.
func configHosts(ctx context.Context, o configSSHOptions, d *deps, stdio Stdio) ([]sshconfig.Host, error) {
	route, err := proxyRouteOf(d, o.openSSHOptions)
	if err != nil {
		return nil, err
	}
	plans, err := listNodes(ctx, o.openSSHOptions, d, stdio, stdio.Err, o.Pattern != "")
	if err != nil {
		return nil, err
	}
	if o.Pattern != "" {
		project, err := projectOf(d, o.globalOptions)
		if err != nil {
			return nil, err
		}
		return []sshconfig.Host{{Pattern: o.Pattern, Options: route.sshOptions(access.Node{Project: project}, route.user)}}, nil
	}
	hosts := make([]sshconfig.Host, len(plans))
	for i, p := range plans {
		hosts[i] = sshconfig.Host{Pattern: p.Node.Name, Options: route.sshOptions(p.Node, p.User)}
	}
	return hosts, nil
}

// replaceBrokenKey replaces the key pair the ssh config names when it
// cannot be used as it is (--force-key-file-overwrite), as gcloud
// config-ssh does: the proxy would fail on it at every ssh. A missing pair
// is left for the proxy to create.
func replaceBrokenKey(o openSSHOptions, d *deps, stdio Stdio) error {
	path, err := keyFileOf(d, o.keyOptions)
	if err != nil {
		return err
	}
	kp, err := keys.Load(path)
	var kfe *keys.KeyFileError
	switch {
	case err == nil:
		return kp.Close()
	case !errors.As(err, &kfe) || !kfe.Broken:
		return nil
	case o.DryRun:
		fmt.Fprintf(stdio.Out, "would replace the key pair %s with a new one (%v)\n", path, err)
		return nil
	}
	kp, err = loadKey(path, stdio.Err, true)
	if err != nil {
		return err
	}
	return kp.Close()
}
