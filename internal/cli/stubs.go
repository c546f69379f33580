package cli

import (
	"errors"

	ucli "github.com/urfave/cli/v2"
)

// The commands below are being written; each moves to its own file.

func sshFlags() []ucli.Flag { return googleFlags() }

func sshAction(c *ucli.Context, stdio Stdio) error {
	return errors.New("not written yet")
}

func proxyCommand(stdio Stdio) *ucli.Command     { return &ucli.Command{Name: "proxy", Hidden: true} }
func tunnelCommand(stdio Stdio) *ucli.Command    { return &ucli.Command{Name: "tunnel", Hidden: true} }
func keysCommand(stdio Stdio) *ucli.Command      { return &ucli.Command{Name: "keys", Hidden: true} }
func configSSHCommand(stdio Stdio) *ucli.Command { return &ucli.Command{Name: "config-ssh", Hidden: true} }
func inventoryCommand(stdio Stdio) *ucli.Command { return &ucli.Command{Name: "inventory", Hidden: true} }
func doctorCommand(stdio Stdio) *ucli.Command    { return &ucli.Command{Name: "doctor", Hidden: true} }
