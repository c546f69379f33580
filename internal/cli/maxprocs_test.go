package cli

import (
	"runtime"
	"testing"
)

// TestOneProc: the proxy runs on one P on Linux, where that was measured,
// and leaves GOMAXPROCS alone elsewhere (macOS and Windows: compiled and run
// by their test binaries only) or when the environment sets it. Proxies
// that overlap keep one P until the last ends, which puts back what the
// first found. Not parallel: GOMAXPROCS is the process's.
func TestOneProc(t *testing.T) {
	unset := func(string) (string, bool) { return "", false }
	before := runtime.GOMAXPROCS(0)
	one := before
	if runtime.GOOS == "linux" {
		one = 1
	}
	check := func(when string, want int) {
		t.Helper()
		if got := runtime.GOMAXPROCS(0); got != want {
			t.Errorf("GOMAXPROCS %d %s on %s, want %d", got, when, runtime.GOOS, want)
		}
	}

	restore := oneProc(func(k string) (string, bool) { return map[string]string{"GOMAXPROCS": "3"}[k], k == "GOMAXPROCS" })
	check("with GOMAXPROCS=3 in the environment", before)
	restore()

	first := oneProc(unset)
	check("while proxying", one)
	second := oneProc(unset)
	first()
	check("after the first of two proxies ended", one)
	first() // twice is once
	check("after the first ended twice", one)
	second()
	check("after both ended", before)
}
