package cli

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/internal/fleet"
)

// TestLineWriterBounded: output without a newline goes out as it comes, in
// prefixed pieces of maxLine bytes, instead of piling up until the node
// ends; lines split across writes are joined; nothing is lost.
func TestLineWriterBounded(t *testing.T) {
	var out bytes.Buffer
	w := newRunOutput(Stdio{Out: &out, Err: io.Discard}, runOptions{}, []string{"n1"})
	stdout, _ := w.writers("n1")
	io.WriteString(stdout, "a")
	io.WriteString(stdout, "b\nc")
	if got := out.String(); got != "n1: ab\n" {
		t.Fatalf("after a split line: %q", got)
	}
	out.Reset()
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	const chunks = 64 // 2 MiB, no newline
	for range chunks {
		stdout.Write(chunk)
	}
	// All but the last, incomplete piece is out already.
	pieces := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if want := chunks * len(chunk) / maxLine; len(pieces) != want {
		t.Fatalf("%d pieces before the node ended, want %d", len(pieces), want)
	}
	for i, p := range pieces {
		if !strings.HasPrefix(p, "n1: ") || len(p) != len("n1: ")+maxLine {
			t.Fatalf("piece %d: %d bytes, starts %q", i, len(p), p[:min(len(p), 8)])
		}
	}
	if pieces[0][4] != 'c' {
		t.Errorf("the line's start %q was lost", pieces[0][:8])
	}
	out.Reset()
	w.done(fleet.Result{Node: "n1", Status: fleet.OK})
	if got := out.String(); got != "n1: x\n" {
		t.Errorf("the rest at the end: %q", got[:min(len(got), 20)])
	}
}

// BenchmarkLineWriterNoNewline writes 16 and 64 MiB with no newline through
// a node's writer, in the 32 KiB writes SSH delivers: time per byte stays
// flat (linear) and the writer holds at most maxLine.
func BenchmarkLineWriterNoNewline(b *testing.B) {
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	for _, mib := range []int{16, 64} {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) {
			b.SetBytes(int64(mib) << 20)
			for range b.N {
				w := newRunOutput(Stdio{Out: io.Discard, Err: io.Discard}, runOptions{}, []string{"n1"})
				stdout, _ := w.writers("n1")
				for range mib << 20 / len(chunk) {
					stdout.Write(chunk)
				}
				w.done(fleet.Result{Node: "n1", Status: fleet.OK})
			}
		})
	}
}
