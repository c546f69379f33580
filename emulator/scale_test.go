//go:build unix

package emulator

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// TestScale200: 200 builtin-sshd nodes start quickly in one process, with
// a few file descriptors and goroutines per node and a bounded heap.
func TestScale200(t *testing.T) {
	if testing.Short() {
		t.Skip("200 nodes")
	}
	fds := func() int {
		ents, err := os.ReadDir("/dev/fd")
		if err != nil {
			t.Skipf("cannot count file descriptors: %v", err)
		}
		return len(ents)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fdBefore, gBefore := fds(), runtime.NumGoroutine()
	start := time.Now()
	srv, err := New(Config{Nodes: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	took := time.Since(start)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	perNodeFDs := float64(fds()-fdBefore) / 200
	perNodeG := float64(runtime.NumGoroutine()-gBefore) / 200
	heap := float64(after.HeapInuse-before.HeapInuse) / (1 << 20)
	t.Logf("200 nodes: %v, %.1f fds, %.1f goroutines per node, heap +%.1f MiB", took, perNodeFDs, perNodeG, heap)
	if perNodeFDs > 4 || perNodeG > 6 || heap > 64 {
		t.Errorf("per node %.1f fds, %.1f goroutines; heap +%.1f MiB: want at most 4, 6 and 64 MiB in all", perNodeFDs, perNodeG, heap)
	}
	if took > 30*time.Second {
		t.Errorf("200 nodes took %v to start", took)
	}
}
