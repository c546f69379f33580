// Package bootlog finds, in a VM's serial console output, the lines that
// explain why it takes no logins: disk full, an emergency shell, a kernel
// panic, GRUB trouble. It looks only at the output since the last boot.
package bootlog

import (
	"regexp"
	"strings"
	"sync"
)

// Problem is one kind of trouble and the last line that shows it.
type Problem struct {
	Kind string // "disk full", "emergency shell", "kernel panic", "GRUB"
	Line string // the matching line, trimmed
}

// The patterns gcloud compute ssh --troubleshoot looks for (its VM status
// and boot troubleshooters), grouped by what they mean, plus the generic
// kernel panic line and GRUB's own errors. Compiled on first use, as
// gkessh's other patterns: only doctor and the troubleshooter read serial
// output, and every gkessh process (each ProxyCommand) would pay for them.
var kinds = sync.OnceValue(func() []pattern {
	return []pattern{
		{"disk full", regexp.MustCompile(`No space left on device|No usable temporary directory found in`)},
		{"emergency shell", regexp.MustCompile(`You are now being dropped into an emergency shell|You are in (rescue|emergency) mode|Started \x1b?\[?.*Emergency Shell|Reached target \x1b?\[?.*Emergency Mode`)},
		{"kernel panic", regexp.MustCompile(`Kernel panic - not syncing`)},
		{"GRUB", regexp.MustCompile(`Minimal BASH-like line editing is supported|Failed to load image|Security Violation|^error: (file|disk) .* not found|grub rescue>`)},
	}
})

type pattern struct {
	kind string
	re   *regexp.Regexp
}

// bootMarker starts every boot's kernel log.
var bootMarker = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`Linux version \d`) })

// Scan returns the problems the output since the last boot shows, in the
// order of kinds above.
func Scan(serial string) []Problem {
	lines := strings.Split(serial, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if bootMarker().MatchString(lines[i]) {
			lines = lines[i:]
			break
		}
	}
	var out []Problem
	for _, k := range kinds() {
		for i := len(lines) - 1; i >= 0; i-- {
			if line := strings.TrimSpace(strings.TrimRight(lines[i], "\r")); k.re.MatchString(line) {
				out = append(out, Problem{Kind: k.kind, Line: line})
				break
			}
		}
	}
	return out
}

// Kinds names every kind of problem Scan looks for.
func Kinds() []string {
	out := make([]string, len(kinds()))
	for i, k := range kinds() {
		out[i] = k.kind
	}
	return out
}
