package cli

import (
	"errors"

	ucli "github.com/urfave/cli/v2"
)

// Being written; replaced by ssh.go.
func sshFlags() []ucli.Flag { return googleFlags() }

func sshAction(c *ucli.Context, stdio Stdio) error { return errors.New("not written yet") }
