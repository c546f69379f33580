package sftpcopy

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// The library alone, over loopback SSH to pkg/sftp's server: what the
// copy costs before any tunnel. The end-to-end comparison with OpenSSH's
// scp is internal/e2e's BenchmarkCopy.
func BenchmarkCopy(b *testing.B) {
	const size = 64 << 20
	src, remote, back := b.TempDir(), b.TempDir(), b.TempDir()
	writeFile(b, filepath.Join(src, "f"), size, 1)
	c := serveSFTP(b, osServer(remote))
	for _, dir := range []string{"push", "pull"} {
		b.Run(fmt.Sprintf("%s-%dMiB", dir, size>>20), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				var err error
				if dir == "push" {
					_, err = c.Push(context.Background(), []string{filepath.Join(src, "f")}, "f", Options{})
				} else {
					_, err = c.Pull(context.Background(), []string{"f"}, filepath.Join(back, "f"), Options{})
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
