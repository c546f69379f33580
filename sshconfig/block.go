// Package sshconfig renders and merges gkessh's managed block in
// ~/.ssh/config, quotes values for it and writes it in place.
package sshconfig

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// The markers around gkessh's managed block in ~/.ssh/config. Everything
// between them belongs to gkessh; everything outside is never touched.
const (
	BeginMarker = "# BEGIN gkessh managed block: 'gkessh config-ssh' rewrites it, 'gkessh config-ssh --remove' removes it."
	EndMarker   = "# END gkessh managed block"
)

// Host is one Host entry of the managed block. Options are written in the
// order given, as "Key value".
type Host struct {
	Pattern string
	Options [][2]string
}

// Render renders the managed block, markers included, ending in a newline.
func Render(hosts []Host) []byte {
	var b bytes.Buffer
	b.WriteString(BeginMarker + "\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "Host %s\n", h.Pattern)
		for _, o := range h.Options {
			fmt.Fprintf(&b, "    %s %s\n", o[0], o[1])
		}
	}
	b.WriteString(EndMarker + "\n")
	return b.Bytes()
}

// ErrSeveralBlocks reports a config with more than one managed block, which
// gkessh refuses to guess about.
var ErrSeveralBlocks = errors.New("sshconfig: more than one gkessh managed block: remove all but one by hand")

// Merge returns config with its managed block replaced by block, or with
// block added when there is none. The block goes first in the file, because
// ssh uses the first value it finds for each option and a catch-all
// "Host *" further down must not override the ProxyCommand.
func Merge(config, block []byte) ([]byte, error) {
	start, end, err := find(config)
	if err != nil {
		return nil, err
	}
	if start < 0 {
		if len(config) == 0 {
			return append([]byte(nil), block...), nil
		}
		out := append(append([]byte(nil), block...), '\n')
		return append(out, config...), nil
	}
	out := append([]byte(nil), config[:start]...)
	out = append(out, block...)
	return append(out, config[end:]...), nil
}

// Remove returns config without its managed block (and the blank line Merge
// put after it).
func Remove(config []byte) ([]byte, error) {
	start, end, err := find(config)
	if err != nil || start < 0 {
		return config, err
	}
	rest := config[end:]
	if start == 0 {
		rest = bytes.TrimPrefix(rest, []byte("\n"))
	}
	return append(append([]byte(nil), config[:start]...), rest...), nil
}

// Block returns the managed block in config, nil if there is none.
func Block(config []byte) ([]byte, error) {
	start, end, err := find(config)
	if err != nil || start < 0 {
		return nil, err
	}
	return config[start:end], nil
}

// find locates the managed block: [start, end) spans the begin marker line
// through the end marker line and its newline. start is -1 when absent.
func find(config []byte) (start, end int, err error) {
	start, end = -1, -1
	off := 0
	for off < len(config) {
		lineEnd := bytes.IndexByte(config[off:], '\n')
		next := len(config)
		if lineEnd >= 0 {
			next = off + lineEnd + 1
		}
		line := strings.TrimSpace(string(config[off:next]))
		switch {
		case line == BeginMarker:
			if start >= 0 {
				return -1, -1, ErrSeveralBlocks
			}
			start = off
		case line == EndMarker && start >= 0 && end < 0:
			end = next
		}
		off = next
	}
	if start >= 0 && end < 0 {
		return -1, -1, errors.New("sshconfig: gkessh managed block has no end marker: fix ~/.ssh/config by hand")
	}
	return start, end, nil
}
