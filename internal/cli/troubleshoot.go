package cli

import (
	"context"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// troubleshootFlag is gcloud compute ssh's --troubleshoot: check why a
// login fails instead of logging in, which doctor does.
func troubleshootFlag() ucli.Flag {
	return &ucli.BoolFlag{Name: "troubleshoot", Usage: "gcloud's: run gkessh doctor's checks for NODE (the instance, OS Login, keys, IAM, firewall, serial console, host keys, an IAP tunnel to --port) instead of logging in"}
}

// checkTroubleshoot refuses, with --troubleshoot, what doctor would not
// honour: a command and every flag it does not take.
func checkTroubleshoot(c *ucli.Context, o sshOptions) error {
	takes := slices.Concat(globalsOf["gkessh doctor"], []string{"troubleshoot", "port", "tunnel-through-iap"})
	for _, f := range c.App.Flags {
		if name := f.Names()[0]; c.IsSet(name) && !slices.Contains(takes, name) {
			return usagef("--troubleshoot runs gkessh doctor's checks and logs in to nothing, so --%s would do nothing: drop it", name)
		}
	}
	if len(o.Command) > 0 {
		return usagef("--troubleshoot runs gkessh doctor's checks and no command: drop %q", strings.Join(o.Command, " "))
	}
	return nil
}

// troubleshoot is gkessh NODE --troubleshoot: doctor's checks for the
// node, with the user and key the login would use; like doctor, it exits 1
// when a check fails.
func troubleshoot(ctx context.Context, o sshOptions, d *deps, stdio Stdio) error {
	return runDoctor(ctx, doctorOptions{globalOptions: o.globalOptions, keyOptions: o.keyOptions, Node: o.Node, Port: o.Port}, d, stdio)
}
