package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/gkessh/gkessh/gce"
	"github.com/gkessh/gkessh/sshconfig"
)

// configSSHOptions are the flags of config-ssh.
type configSSHOptions struct {
	openSSHOptions
	Path    string // the ssh config file
	Pattern string // one wildcard Host entry instead of one per instance
	DryRun  bool
	Remove  bool
}

func configSSHCommand(stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:  "config-ssh",
		Usage: "write a managed block to ~/.ssh/config so ssh, scp, rsync and Ansible reach nodes through gkessh",
		Description: "Writes one Host entry per RUNNING instance (or, with --pattern, one wildcard entry) with\n" +
			"ProxyCommand 'gkessh proxy', and pins each node's published host keys in\n" +
			"~/.ssh/google_compute_known_hosts. Everything outside the block stays as it is.",
		Flags: append(openSSHFlags(),
			&ucli.StringFlag{Name: "ssh-config-file", Usage: "ssh config file (default ~/.ssh/config)"},
			&ucli.StringFlag{Name: "pattern", Usage: "write one Host entry for this pattern (e.g. 'gke-cluster-*') instead of one per instance"},
			&ucli.BoolFlag{Name: "dry-run", Usage: "print the change, write nothing"},
			&ucli.BoolFlag{Name: "remove", Usage: "remove the managed block"},
		),
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				return usagef("config-ssh takes no arguments")
			}
			o, err := openSSHFlagValues(c)
			if err != nil {
				return err
			}
			opts := configSSHOptions{openSSHOptions: o, Path: c.String("ssh-config-file"), Pattern: c.String("pattern"), DryRun: c.Bool("dry-run"), Remove: c.Bool("remove")}
			if opts.Pattern != "" {
				if err := gce.CheckNamePattern(opts.Pattern); err != nil {
					return usagef("--pattern: %v: use instance name characters with * and ?", err)
				}
			}
			if opts.Path == "" {
				home, err := os.UserHomeDir()
				if err != nil {
					return fmt.Errorf("no home directory: %w", err)
				}
				opts.Path = filepath.Join(home, ".ssh", "config")
			}
			return runConfigSSH(c.Context, opts, stdio)
		},
	}
}

func runConfigSSH(ctx context.Context, o configSSHOptions, stdio Stdio) error {
	old, err := os.ReadFile(o.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", o.Path, err)
	}
	var updated []byte
	if o.Remove {
		updated, err = sshconfig.Remove(old)
	} else {
		var hosts []sshconfig.Host
		if hosts, err = o.hosts(ctx, stdio.Err); err != nil {
			return err
		}
		updated, err = sshconfig.Merge(old, sshconfig.Render(hosts))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", o.Path, err)
	}
	if bytes.Equal(old, updated) {
		fmt.Fprintf(stdio.Err, "%s is up to date.\n", o.Path)
		return nil
	}
	if o.DryRun {
		oldBlock, _ := sshconfig.Block(old)
		newBlock, _ := sshconfig.Block(updated)
		fmt.Fprintf(stdio.Out, "--- %s\n+++ %s\n", o.Path, o.Path)
		stdio.Out.Write(lineDiff(oldBlock, newBlock))
		return nil
	}
	if err := writeFileKeepMode(o.Path, updated); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Err, "Updated %s.\n", o.Path)
	return nil
}

// hosts are the managed block's entries: one per node, or with --pattern
// one wildcard entry whose host keys are pinned under the node names, since
// one HostKeyAlias cannot fit every node.
func (o configSSHOptions) hosts(ctx context.Context, warn io.Writer) ([]sshconfig.Host, error) {
	nodes, _, err := o.listNodes(ctx, warn, o.Pattern != "")
	if err != nil {
		return nil, err
	}
	if o.Pattern != "" {
		project, err := o.project()
		if err != nil {
			return nil, err
		}
		return []sshconfig.Host{{Pattern: o.Pattern, Options: o.sshOptions(resolved{Project: project})}}, nil
	}
	hosts := make([]sshconfig.Host, len(nodes))
	for i, r := range nodes {
		hosts[i] = sshconfig.Host{Pattern: r.Name, Options: o.sshOptions(r)}
	}
	return hosts, nil
}

// writeFileKeepMode replaces path atomically (temp file and rename),
// keeping its mode; a new file gets 0600, as gcloud writes ~/.ssh/config.
func writeFileKeepMode(path string, data []byte) error {
	mode := fs.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// lineDiff shows how block a became block b: the lines only in a with "-",
// only in b with "+", common lines with " ", in order (longest common
// subsequence; blocks are small).
func lineDiff(a, b []byte) []byte {
	x := strings.SplitAfter(string(a), "\n")
	y := strings.SplitAfter(string(b), "\n")
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out bytes.Buffer
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			if x[i] != "" {
				out.WriteString(" " + x[i])
			}
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] > lcs[i+1][j]):
			if y[j] != "" {
				out.WriteString("+" + y[j])
			}
			j++
		default:
			if x[i] != "" {
				out.WriteString("-" + x[i])
			}
			i++
		}
	}
	return out.Bytes()
}
