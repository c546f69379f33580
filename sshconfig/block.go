// Package sshconfig renders and merges gkessh's managed blocks in
// ~/.ssh/config, one per project, quotes values for them and writes the
// file in place.
package sshconfig

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// The markers around a managed block: everything between them belongs to
// gkessh; everything outside is never touched. Each project has its own
// block, whose markers name it. A block of the old form (LegacyBegin,
// LegacyEnd, no project) is taken over by the first project written.
const (
	beginPrefix = "# BEGIN gkessh managed block for project "
	endPrefix   = "# END gkessh managed block for project "
	LegacyBegin = "# BEGIN gkessh managed block: 'gkessh config-ssh' rewrites it, 'gkessh config-ssh --remove' removes it."
	LegacyEnd   = "# END gkessh managed block"
)

// BeginMarker is the first line of project's block.
func BeginMarker(project string) string {
	return beginPrefix + project + " ('gkessh config-ssh --project " + project + "' rewrites it, " +
		"'gkessh config-ssh --remove --project " + project + "' removes it)"
}

// EndMarker is the last line of project's block.
func EndMarker(project string) string { return endPrefix + project }

// Host is one Host entry of the managed block. Options are written in the
// order given, as "Key value".
type Host struct {
	Pattern string
	Options [][2]string
}

// Render renders project's managed block, markers included, ending in a
// newline.
func Render(project string, hosts []Host) []byte {
	var b bytes.Buffer
	b.WriteString(BeginMarker(project) + "\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "Host %s\n", h.Pattern)
		for _, o := range h.Options {
			fmt.Fprintf(&b, "    %s %s\n", o[0], o[1])
		}
	}
	b.WriteString(EndMarker(project) + "\n")
	return b.Bytes()
}

// ErrSeveralBlocks reports a config with two managed blocks for one
// project (or two of the old form), which gkessh refuses to guess about.
var ErrSeveralBlocks = errors.New("sshconfig: two gkessh managed blocks for one project: remove all but one by hand")

// Merge returns config with project's managed block replaced by block (or
// a block of the old form, which has no project, when project has none),
// or with block added after the other managed blocks, or first in the file
// when there are none: ssh uses the first value it finds for each option,
// and a catch-all "Host *" further down must not override the
// ProxyCommand. Other projects' blocks are kept byte for byte.
func Merge(config []byte, project string, block []byte) ([]byte, error) {
	spans, err := find(config)
	if err != nil {
		return nil, err
	}
	if s, ok := pick(spans, project); ok {
		return splice(config, s.start, s.end, block), nil
	}
	if len(spans) > 0 {
		end := spans[len(spans)-1].end
		if config[end-1] != '\n' { // an end marker last in the file, unterminated
			block = append([]byte{'\n'}, block...)
		}
		return splice(config, end, end, block), nil
	}
	if len(config) == 0 {
		return append([]byte(nil), block...), nil
	}
	out := append(append([]byte(nil), block...), '\n')
	return append(out, config...), nil
}

// Remove returns config without project's managed block (or one of the
// old form when project has none), and without the blank line Merge put
// after it; found reports whether there was one.
func Remove(config []byte, project string) (out []byte, found bool, err error) {
	spans, err := find(config)
	if err != nil {
		return config, false, err
	}
	s, ok := pick(spans, project)
	if !ok {
		return config, false, nil
	}
	rest := config[s.end:]
	if s.start == 0 {
		rest = bytes.TrimPrefix(rest, []byte("\n"))
	}
	return append(append([]byte(nil), config[:s.start]...), rest...), true, nil
}

// Block returns project's managed block in config (as Merge and Remove
// choose it), nil if there is none.
func Block(config []byte, project string) ([]byte, error) {
	spans, err := find(config)
	if err != nil {
		return nil, err
	}
	s, ok := pick(spans, project)
	if !ok {
		return nil, nil
	}
	return config[s.start:s.end], nil
}

// Projects lists the projects config has a managed block for, in file
// order; "" stands for a block of the old form.
func Projects(config []byte) ([]string, error) {
	spans, err := find(config)
	var ps []string
	for _, s := range spans {
		ps = append(ps, s.project)
	}
	return ps, err
}

// span is a managed block: [start, end) spans its begin marker line
// through its end marker line and that line's newline.
type span struct {
	project    string // "": the old form
	start, end int
}

// pick is project's block, else the one of the old form.
func pick(spans []span, project string) (span, bool) {
	for _, want := range []string{project, ""} {
		for _, s := range spans {
			if s.project == want {
				return s, true
			}
		}
	}
	return span{}, false
}

func splice(config []byte, start, end int, block []byte) []byte {
	out := append([]byte(nil), config[:start]...)
	out = append(out, block...)
	return append(out, config[end:]...)
}

// find locates the managed blocks, in file order.
func find(config []byte) ([]span, error) {
	var spans []span
	open := -1 // index in spans of the block whose end is not yet found
	seen := map[string]bool{}
	for off := 0; off < len(config); {
		next := len(config)
		if i := bytes.IndexByte(config[off:], '\n'); i >= 0 {
			next = off + i + 1
		}
		line := strings.TrimSpace(string(config[off:next]))
		project, begin, end := marker(line)
		switch {
		case begin && open >= 0:
			return nil, fmt.Errorf("sshconfig: a gkessh managed block begins inside the one for %s: fix ~/.ssh/config by hand", describe(spans[open].project))
		case begin && seen[project]:
			return nil, ErrSeveralBlocks
		case begin:
			seen[project] = true
			spans = append(spans, span{project: project, start: off})
			open = len(spans) - 1
		case end && open >= 0 && project == spans[open].project:
			spans[open].end = next
			open = -1
		}
		off = next
	}
	if open >= 0 {
		return nil, fmt.Errorf("sshconfig: the gkessh managed block for %s has no end marker: fix ~/.ssh/config by hand", describe(spans[open].project))
	}
	return spans, nil
}

// marker reads a marker line: which project, and whether it begins or
// ends a block.
func marker(line string) (project string, begin, end bool) {
	switch {
	case line == LegacyBegin:
		return "", true, false
	case line == LegacyEnd:
		return "", false, true
	case strings.HasPrefix(line, beginPrefix):
		p, _, _ := strings.Cut(strings.TrimPrefix(line, beginPrefix), " ")
		return p, p != "", false
	case strings.HasPrefix(line, endPrefix):
		p := strings.TrimPrefix(line, endPrefix)
		return p, false, p != "" && !strings.Contains(p, " ")
	}
	return "", false, false
}

func describe(project string) string {
	if project == "" {
		return "no project (an older gkessh's)"
	}
	return "project " + project
}
