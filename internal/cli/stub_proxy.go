package cli

import ucli "github.com/urfave/cli/v2"

// Being written; replaced by proxy.go.
func proxyCommand(stdio Stdio) *ucli.Command { return &ucli.Command{Name: "proxy", Hidden: true} }
