//go:build urfave_cli_no_docs

package cli

import ucli "github.com/urfave/cli/v2"

// manCommand is absent from builds without urfave's docs (see man.go).
func manCommand(Stdio) *ucli.Command { return nil }
