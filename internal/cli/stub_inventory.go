package cli

import ucli "github.com/urfave/cli/v2"

// Being written; replaced by inventory.go.
func inventoryCommand(stdio Stdio) *ucli.Command {
	return &ucli.Command{Name: "inventory", Hidden: true}
}
