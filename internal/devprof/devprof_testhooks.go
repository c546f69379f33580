//go:build gkessh_testhooks

package devprof

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
)

// Start profiles the process when the test build's environment asks:
// GKESSH_TEST_CPUPROFILE, GKESSH_TEST_MEMPROFILE and GKESSH_TEST_TRACE
// (an execution trace: where goroutines wait) name files, and a %d
// in a name becomes the process id, so that the many processes of one
// benchmark keep their own. stop writes the profiles; call it before the
// process exits.
func Start() (stop func()) {
	cpu := os.Getenv("GKESSH_TEST_CPUPROFILE")
	mem := os.Getenv("GKESSH_TEST_MEMPROFILE")
	var f, tf *os.File
	if tr := os.Getenv("GKESSH_TEST_TRACE"); tr != "" {
		var err error
		if tf, err = os.Create(name(tr)); err == nil {
			err = trace.Start(tf)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "devprof:", err)
			tf = nil
		}
	}
	if cpu != "" {
		var err error
		if f, err = os.Create(name(cpu)); err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "devprof:", err)
			f = nil
		}
	}
	return func() {
		if tf != nil {
			trace.Stop()
			tf.Close()
		}
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
		}
		if mem != "" {
			if err := writeAllocs(name(mem)); err != nil {
				fmt.Fprintln(os.Stderr, "devprof:", err)
			}
		}
	}
}

// writeAllocs writes the allocation profile: every allocation since the
// start, and what is live as of the last collection.
func writeAllocs(path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func name(pattern string) string {
	return strings.ReplaceAll(pattern, "%d", strconv.Itoa(os.Getpid()))
}
