//go:build unix

package emulator

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"sync"
)

// gzipCache compresses answers and keeps the last few large ones by their
// content: a fleet lists the same unchanged pages of instances again and
// again, and compressing a page of 500 GKE nodes (25 MB) anew each time
// cost the emulator more CPU than the rest of the call, on the machine
// the client runs on, where Google's frontends spend theirs elsewhere.
type gzipCache struct {
	mu   sync.Mutex
	kept [4]gzipped
	next int // the slot to fill next
}

type gzipped struct {
	sum [sha256.Size]byte // of the answer
	z   []byte            // nil: an empty slot
}

// minCached is the smallest answer kept: small ones cost little to
// compress and would push the pages out.
const minCached = 64 << 10

// compress returns b gzipped.
func (c *gzipCache) compress(b []byte) []byte {
	if len(b) < minCached {
		return gzipBytes(b)
	}
	sum := sha256.Sum256(b)
	c.mu.Lock()
	for _, k := range c.kept {
		if k.z != nil && k.sum == sum {
			c.mu.Unlock()
			return k.z
		}
	}
	c.mu.Unlock()
	z := gzipBytes(b)
	c.mu.Lock()
	c.kept[c.next] = gzipped{sum, z}
	c.next = (c.next + 1) % len(c.kept)
	c.mu.Unlock()
	return z
}

// gzipWriters are reused: a gzip.Writer's compressor is ~1 MB to
// allocate and clear, more than compressing a small answer costs.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a valid level
	return zw
}}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&buf)
	zw.Write(b) // a bytes.Buffer takes it all
	zw.Close()
	gzipWriters.Put(zw)
	return buf.Bytes()
}
