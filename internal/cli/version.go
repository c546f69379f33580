package cli

import (
	"runtime"
	"runtime/debug"
)

// Version, Commit and Date are stamped by make build and make dist with
// -ldflags "-X github.com/gkessh/gkessh/internal/cli.Version=v1.2.3 ...".
// A `go install ...@v1.2.3` binary has no stamp; it carries the module
// version and, built from a checkout, the commit in its build info.
var (
	Version = "dev"
	Commit  = ""
	Date    = "" // the commit's date, RFC 3339
)

// versionLine is what --version prints.
func versionLine() string {
	bi, _ := debug.ReadBuildInfo()
	return formatVersion(Version, Commit, Date, bi) + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// formatVersion says "gkessh VERSION (COMMIT, DATE)", taking from bi
// (which may be nil) what the build did not stamp.
func formatVersion(version, commit, date string, bi *debug.BuildInfo) string {
	stamped, modified := commit != "", false
	if bi != nil {
		if version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if commit == "" {
					commit = s.Value
				}
			case "vcs.time":
				if date == "" {
					date = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	line := "gkessh " + version
	if commit == "" {
		return line
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if modified && !stamped {
		commit += "+dirty"
	}
	line += " (" + commit
	if date != "" {
		line += ", " + date
	}
	return line + ")"
}
