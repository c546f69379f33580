package cli

import (
	"runtime/debug"
	"testing"
)

func TestFormatVersion(t *testing.T) {
	vcs := &debug.BuildInfo{
		Main: debug.Module{Version: "v1.4.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"},
			{Key: "vcs.time", Value: "2026-11-30T10:00:00Z"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
	devel := &debug.BuildInfo{
		Main: debug.Module{Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "fedcba9876543210"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  string
	}{
		{"make dist stamp wins", "v1.5.0", "abc1234", "2026-12-01T09:00:00Z", vcs, "gkessh v1.5.0 (abc1234, 2026-12-01T09:00:00Z)"},
		{"go install @version", "dev", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "gkessh v1.4.0"},
		{"go install with vcs", "dev", "", "", vcs, "gkessh v1.4.0 (0123456789ab, 2026-11-30T10:00:00Z)"},
		{"go build in a dirty checkout", "dev", "", "", devel, "gkessh dev (fedcba987654+dirty)"},
		{"no build info", "dev", "", "", nil, "gkessh dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatVersion(tt.version, tt.commit, tt.date, tt.bi); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
