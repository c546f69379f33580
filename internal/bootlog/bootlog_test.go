package bootlog

import (
	"strings"
	"testing"
)

const boot = "[    0.000000] Linux version 6.1.100+ (builder@localhost)\n[    3.8] systemd[1]: Reached target Multi-User System.\n"

func TestScan(t *testing.T) {
	for _, tc := range []struct {
		name, serial string
		kind, line   string // "" kind: nothing found
	}{
		{"healthy", boot + "node login: ", "", ""},
		{"disk full", boot + "[ 512.1] EXT4-fs warning: write failed: No space left on device\r\n", "disk full", "[ 512.1] EXT4-fs warning: write failed: No space left on device"},
		{"tmp", boot + "mktemp: No usable temporary directory found in ['/tmp']\n", "disk full", "mktemp: No usable temporary directory found in ['/tmp']"},
		{"emergency", boot + "You are in emergency mode. After logging in, type \"journalctl -xb\"\n", "emergency shell", "You are in emergency mode. After logging in, type \"journalctl -xb\""},
		{"emergency target", boot + "[  OK  ] Reached target \x1b[0;1;39mEmergency Mode\x1b[0m.\n", "emergency shell", "[  OK  ] Reached target \x1b[0;1;39mEmergency Mode\x1b[0m."},
		{"panic", boot + "[ 2.1] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n", "kernel panic", "[ 2.1] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"},
		{"grub", "error: file '/boot/vmlinuz' not found.\nMinimal BASH-like line editing is supported.\n", "GRUB", "Minimal BASH-like line editing is supported."},
		{"before the last boot", "Kernel panic - not syncing: Fatal exception\n" + boot, "", ""},
	} {
		got := Scan(tc.serial)
		switch {
		case tc.kind == "" && len(got) != 0:
			t.Errorf("%s: found %+v, want nothing", tc.name, got)
		case tc.kind != "" && (len(got) != 1 || got[0].Kind != tc.kind || got[0].Line != tc.line):
			t.Errorf("%s: found %+v, want %s %q", tc.name, got, tc.kind, tc.line)
		}
	}
	if k := strings.Join(Kinds(), ", "); k != "disk full, emergency shell, kernel panic, GRUB" {
		t.Errorf("Kinds = %s", k)
	}
}

// FuzzScan: every problem found quotes a line of the input.
func FuzzScan(f *testing.F) {
	f.Add(boot + "No space left on device\n")
	f.Add("Kernel panic - not syncing\r\nLinux version 5\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range Scan(s) {
			if !strings.Contains(s, p.Line) {
				t.Fatalf("Scan(%q) quotes %q", s, p.Line)
			}
		}
	})
}
