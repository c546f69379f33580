package cli

import ucli "github.com/urfave/cli/v2"

// Being written; replaced by tunnel.go.
func tunnelCommand(stdio Stdio) *ucli.Command { return &ucli.Command{Name: "tunnel", Hidden: true} }
