package sshclient

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
)

// TestSessionCopiesPooled: the streams Run hands x/crypto/ssh are copied
// through pooled buffers, as io.Copy copies them, the bytes unchanged: 50
// copies each way allocate no 32 KiB buffer apiece.
func TestSessionCopiesPooled(t *testing.T) {
	data := strings.Repeat("0123456789", 10<<10)
	// What x/crypto/ssh copies from and to: a channel, which has neither
	// WriterTo nor ReaderFrom.
	type plainReader struct{ io.Reader }
	type plainWriter struct{ io.Writer }
	for _, tc := range []struct {
		name string
		copy func(dst *bytes.Buffer) (int64, error)
	}{
		{"stdout", func(dst *bytes.Buffer) (int64, error) {
			return io.Copy(pooledWriter(plainWriter{dst}), plainReader{strings.NewReader(data)})
		}},
		{"stdin", func(dst *bytes.Buffer) (int64, error) {
			return io.Copy(plainWriter{dst}, pooledReader(plainReader{strings.NewReader(data)}))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dst bytes.Buffer
			dst.Grow(len(data))
			if n, err := tc.copy(&dst); err != nil || n != int64(len(data)) || dst.String() != data {
				t.Fatalf("copied %d bytes (%v), want %d unchanged", n, err, len(data))
			}
			const copies = 50
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range copies {
				dst.Reset()
				tc.copy(&dst)
			}
			runtime.ReadMemStats(&after)
			if per := (after.TotalAlloc - before.TotalAlloc) / copies; per >= 16<<10 {
				t.Errorf("a copy allocates %d bytes: a buffer of its own", per)
			}
		})
	}
}
