//go:build unix

package emulator

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"
)

// TestGzipCache: a large answer compressed again is the kept copy, and
// every answer, kept or not, unpacks to itself.
func TestGzipCache(t *testing.T) {
	var c gzipCache
	page := func(i int) []byte {
		var b bytes.Buffer
		for b.Len() < minCached {
			fmt.Fprintf(&b, "page %d line %d\n", i, b.Len())
		}
		return b.Bytes()
	}
	unpack := func(z []byte) []byte {
		zr, err := gzip.NewReader(bytes.NewReader(z))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := c.compress(page(0))
	if again := c.compress(page(0)); &again[0] != &first[0] {
		t.Errorf("the same page compressed twice")
	}
	for i := range 6 {
		for _, b := range [][]byte{page(i), []byte(`{"small":true}`)} {
			if got := unpack(c.compress(b)); !bytes.Equal(got, b) {
				t.Errorf("page %d: unpacked %.40q, want %.40q", i, got, b)
			}
		}
	}
	if again := c.compress(page(0)); &again[0] == &first[0] {
		t.Errorf("page 0 still kept after five others")
	}
}
