package cli

import (
	"runtime"
	"testing"
)

// TestOneProc: the proxy runs on one P on Linux, where that was measured,
// and leaves GOMAXPROCS alone elsewhere (macOS and Windows: compiled and run
// by their test binaries only); the old value comes back after.
func TestOneProc(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	before := runtime.GOMAXPROCS(0)
	restore := oneProc()
	during := runtime.GOMAXPROCS(0)
	restore()
	want := before
	if runtime.GOOS == "linux" {
		want = 1
	}
	if during != want {
		t.Errorf("GOMAXPROCS %d while proxying on %s, want %d", during, runtime.GOOS, want)
	}
	if after := runtime.GOMAXPROCS(0); after != before {
		t.Errorf("GOMAXPROCS %d after, want %d back", after, before)
	}
}
