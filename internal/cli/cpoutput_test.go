package cli

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/fleet"
	"github.com/gkessh/gkessh/internal/sftpcopy"
)

func TestFmtBytesClock(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 10 << 20: "10.0 MiB", 256 << 20: "256 MiB", 5 << 40: "5.0 TiB"} {
		if got := fmtBytes(n); got != want {
			t.Errorf("fmtBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{0: "0:00", 61 * time.Second: "1:01", 3725 * time.Second: "1:02:05"} {
		if got := fmtClock(d); got != want {
			t.Errorf("fmtClock(%v) = %q, want %q", d, got, want)
		}
	}
}

// A terminal gets a progress line that is redrawn in place, and a fleet
// a line per node and the total; a pipe gets the node lines only.
func TestCpOutput(t *testing.T) {
	for _, live := range []bool{true, false} {
		var b strings.Builder
		o := newCpOutput(&b, live, false, true, []string{"n1", "node-2"})
		o.update("n1", sftpcopy.Progress{Bytes: 5 << 20, Total: 10 << 20, Elapsed: time.Second})
		o.done(fleet.Result{Node: "n1", Status: fleet.OK, Duration: 2 * time.Second}, sftpcopy.Result{Files: 1, Bytes: 10 << 20})
		o.done(fleet.Result{Node: "node-2", Status: fleet.Unreachable, Err: errors.New("tunnel\x1b[31m refused")}, sftpcopy.Result{})
		o.stop()
		got := b.String()
		for _, want := range []string{"n1:     ok, 10.0 MiB in 1 file, 2s\n", `node-2: unreachable: tunnel\x1b[31m refused` + "\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("live=%v: output lacks %q:\n%q", live, want, got)
			}
		}
		if drew := strings.Contains(got, "[0/2 nodes]  25%") && strings.Contains(got, "\r\x1b[K"); drew != live {
			t.Errorf("live=%v: progress drawn = %v:\n%q", live, drew, got)
		}
	}
}

func TestProgressLine(t *testing.T) {
	p := sftpcopy.Progress{Bytes: 64 << 20, Total: 256 << 20, Elapsed: 2 * time.Second}
	if got, want := progressLine("node", p), "node  25%   64.0 MiB   32.0 MiB/s 0:06 ETA"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	p.Bytes, p.Done = p.Total, true
	if got := progressLine("node", p); !strings.Contains(got, "100%") || !strings.Contains(got, "0:02") {
		t.Errorf("done line %q", got)
	}
}
