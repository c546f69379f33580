package cli

import ucli "github.com/urfave/cli/v2"

// Being written; replaced by doctor.go.
func doctorCommand(stdio Stdio) *ucli.Command { return &ucli.Command{Name: "doctor", Hidden: true} }
