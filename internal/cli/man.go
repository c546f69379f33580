//go:build !urfave_cli_no_docs

package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"
)

// manCommand prints gkessh.1 from the command definitions (make man).
// Released binaries are built with urfave_cli_no_docs, which leaves out
// urfave's man-page generator, and so this command.
func manCommand(stdio Stdio) *ucli.Command {
	return &ucli.Command{
		Name:   "man",
		Usage:  "print the gkessh.1 man page",
		Hidden: true,
		Action: func(c *ucli.Context) error {
			page, err := c.App.ToManWithSection(1)
			if err != nil {
				return err
			}
			fmt.Fprint(stdio.Out, page)
			return nil
		},
	}
}
