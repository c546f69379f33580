package cli

import ucli "github.com/urfave/cli/v2"

// Being written; replaced by keys.go.
func keysCommand(stdio Stdio) *ucli.Command { return &ucli.Command{Name: "keys", Hidden: true} }
