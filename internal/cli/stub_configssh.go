package cli

import ucli "github.com/urfave/cli/v2"

// Being written; replaced by configssh.go.
func configSSHCommand(stdio Stdio) *ucli.Command {
	return &ucli.Command{Name: "config-ssh", Hidden: true}
}
