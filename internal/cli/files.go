package cli

import (
	"bytes"
	"strings"
)

// blockDiff shows how managed block a became b: the lines only in a with
// "-", only in b with "+", common lines with " ". A block is a run of
// entries that each start with an unindented line (a marker or "Host X");
// it pairs the entries by that line in one pass and compares lines only
// within a pair, so time and memory grow linearly with the block (an LCS
// over all lines took 989 MB at 1000 nodes). Entries that moved show as
// removed and added.
func blockDiff(a, b []byte) []byte {
	x, y := entries(a), entries(b)
	inX, inY := map[string]int{}, map[string]int{}
	for _, e := range x {
		inX[e.head]++
	}
	for _, e := range y {
		inY[e.head]++
	}
	var out bytes.Buffer
	emit := func(sign string, e entry) {
		for _, l := range strings.SplitAfter(e.text, "\n") {
			if l != "" {
				out.WriteString(sign + l)
			}
		}
	}
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i].head == y[j].head:
			out.Write(lineDiff([]byte(x[i].text), []byte(y[j].text)))
			inX[x[i].head]--
			inY[y[j].head]--
			i, j = i+1, j+1
		case i < len(x) && (inY[x[i].head] == 0 || j == len(y)):
			emit("-", x[i])
			inX[x[i].head]--
			i++
		case j < len(y) && (inX[y[j].head] == 0 || i == len(x)):
			emit("+", y[j])
			inY[y[j].head]--
			j++
		default: // both in the other block, further on: x[i] moved
			emit("-", x[i]) // its partner in y shows as added
			inX[x[i].head]--
			i++
		}
	}
	return out.Bytes()
}

// entry is one unindented line of a block and the indented lines after it.
type entry struct{ head, text string }

func entries(block []byte) []entry {
	var es []entry
	for _, l := range strings.SplitAfter(string(block), "\n") {
		if l == "" {
			continue
		}
		if len(es) == 0 || (l[0] != ' ' && l[0] != '\t') {
			es = append(es, entry{head: l})
		}
		es[len(es)-1].text += l
	}
	return es
}

// lineDiff shows how a became b line by line, as blockDiff does (longest
// common subsequence: for one entry, which is a few lines).
func lineDiff(a, b []byte) []byte {
	x := strings.SplitAfter(string(a), "\n")
	y := strings.SplitAfter(string(b), "\n")
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out bytes.Buffer
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			if x[i] != "" {
				out.WriteString(" " + x[i])
			}
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] > lcs[i+1][j]):
			if y[j] != "" {
				out.WriteString("+" + y[j])
			}
			j++
		default:
			if x[i] != "" {
				out.WriteString("-" + x[i])
			}
			i++
		}
	}
	return out.Bytes()
}
