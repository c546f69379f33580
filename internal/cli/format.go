package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"
)

// formatFlag is --format table|json, the one output flag of every command
// that lists (run, cp, audit, keys list); json says what JSON it prints.
func formatFlag(json string) ucli.Flag {
	return &ucli.StringFlag{Name: "format", Value: "table", Usage: "table, or json: " + json}
}

// outputFlag is run's --output (-o), --format's older spelling, kept for a
// release.
func outputFlag() ucli.Flag {
	return &ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "deprecated: use --format"}
}

// formatJSON reads --format, and run's --output: true for json. The old
// spellings (--output, --format text) still work and say on stderr that
// they are deprecated.
func formatJSON(c *ucli.Context) (bool, error) {
	f := c.String("format")
	deprecated := func(old, now string) {
		fmt.Fprintf(c.App.ErrWriter, "gkessh: %s is deprecated and will go: use %s\n", old, now)
	}
	if c.IsSet("output") {
		if c.IsSet("format") {
			return false, usagef("--output and --format: give --format (--output is its old name)")
		}
		f = c.String("output")
		if f == "text" {
			f = "table"
		}
		deprecated("--output", "--format "+f)
	} else if f == "text" {
		deprecated("--format text", "--format table")
		f = "table"
	}
	switch f {
	case "table":
		return false, nil
	case "json":
		return true, nil
	}
	return false, usagef("--format %q: want table or json", f)
}
