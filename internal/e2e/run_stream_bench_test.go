//go:build unix

package e2e

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// BenchmarkRunOutputNoNewline measures one `gkessh run` process printing a
// node's output that has no newline at all (`head -c N /dev/zero`), 16 and
// 64 MiB side by side: its wall time (64/16 near 4 is linear) and its peak
// RSS, which must stay at most 64 MB for 64 MiB (33 s and 904 MB before
// output was flushed in pieces).
func BenchmarkRunOutputNoNewline(b *testing.B) {
	w := startEmulator(b, "--nodes", "1", "--propagation-delay", "100ms")
	node := w.nodes()[0].Name
	user := loginUser(b)
	w.run("gkessh", "--user", user, node, "--", "true") // the key and caches, outside the timing
	one := func(mib int) (time.Duration, float64) {
		cmd := w.command("gkessh", "run", "--no-stdin", "--user", user, node, "--", fmt.Sprintf("head -c %dM /dev/zero", mib))
		var n countWriter
		cmd.Stdout = &n
		var stderr strings.Builder
		cmd.Stderr = &stderr
		read := measureUsage(b, cmd)
		if err := cmd.Run(); err != nil {
			b.Fatalf("%v\n%s", err, stderr.String())
		}
		u, err := read()
		if err != nil {
			b.Fatal(err)
		}
		if want := countWriter(mib) << 20; n < want {
			b.Fatalf("%d bytes of output, want at least %d", n, want)
		}
		return u.wall, u.rss
	}
	var t16, t64 time.Duration
	var rss float64
	for range b.N {
		d, _ := one(16)
		t16 += d
		d, r := one(64)
		t64 += d
		rss = max(rss, r)
	}
	b.ReportMetric(t16.Seconds()/float64(b.N), "s-16MiB/op")
	b.ReportMetric(t64.Seconds()/float64(b.N), "s-64MiB/op")
	b.ReportMetric(t64.Seconds()/t16.Seconds(), "64/16")
	b.ReportMetric(rss, "MiB-peak-RSS-64MiB")
	if rss > 64e6/(1<<20) {
		b.Errorf("peak RSS %.0f MiB for 64 MiB of output, over 64 MB", rss)
	}
}

// BenchmarkRunStdin1GiB sends 1 GiB of stdin through one `gkessh run` to 10
// nodes that count it (`wc -c`) and reports the wall time and the run's
// peak RSS, which must stay at most 128 MB (it read all of stdin into
// memory before: 3.2 GB for 1.5 GB).
func BenchmarkRunStdin1GiB(b *testing.B) {
	const size = 1 << 30
	w := startEmulator(b, "--nodes", "10", "--propagation-delay", "100ms")
	user := loginUser(b)
	w.run("gkessh", "run", "--no-stdin", "--user", user, "--all", "--", "true")
	var wall time.Duration
	var rss float64
	for range b.N {
		cmd := w.command("gkessh", "run", "--user", user, "--all", "--", "wc -c")
		read := measureUsage(b, cmd)
		in, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		var out, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		go func() {
			io.CopyN(in, zeros{}, size)
			in.Close()
		}()
		if err := cmd.Wait(); err != nil {
			b.Fatalf("%v\n%s", err, stderr.String())
		}
		wall += time.Since(start)
		u, err := read()
		if err != nil {
			b.Fatal(err)
		}
		rss = max(rss, u.rss)
		if n := strings.Count(out.String(), fmt.Sprintf(" %d\n", size)); n != 10 {
			b.Fatalf("%d of 10 nodes counted %d bytes:\n%s", n, size, out.String())
		}
	}
	b.ReportMetric(wall.Seconds()/float64(b.N), "s/op")
	b.ReportMetric(rss, "MiB-peak-RSS")
	if rss > 128e6/(1<<20) {
		b.Errorf("peak RSS %.0f MiB for 1 GiB to 10 nodes, over 128 MB", rss)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
