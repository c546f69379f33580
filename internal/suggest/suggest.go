// Package suggest finds what a mistyped name was probably meant to be:
// the names nearest to it by edit distance, for a "did you mean" hint.
package suggest

import (
	"cmp"
	"slices"
	"unicode/utf8"
)

// Distance is the optimal string alignment distance between a and b:
// Levenshtein's, with a swap of two neighbours counting as one edit.
func Distance(a, b string) int {
	x, y := []rune(a), []rune(b)
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}

// Near returns the names close enough to name to be what was meant,
// nearest first, then in order of name, at most three: within one edit of
// a name under eight characters, two of a longer one, and fewer edits than
// name has characters (a one-letter name is near every short one). Nodes
// of one GKE node pool differ in a four-character suffix, so two edits
// still point at one of them, not at the whole pool.
func Near(name string, names []string) []string {
	n := utf8.RuneCountInString(name)
	most := 1
	if n >= 8 {
		most = 2
	}
	most = min(most, n-1)
	type hit struct {
		name string
		d    int
	}
	var hits []hit
	for _, n := range names {
		if d := Distance(name, n); d > 0 && d <= most && !slices.ContainsFunc(hits, func(h hit) bool { return h.name == n }) {
			hits = append(hits, hit{n, d})
		}
	}
	slices.SortFunc(hits, func(a, b hit) int { return cmp.Or(a.d-b.d, cmp.Compare(a.name, b.name)) })
	out := make([]string, 0, min(len(hits), 3))
	for _, h := range hits[:min(len(hits), 3)] {
		out = append(out, h.name)
	}
	return out
}
