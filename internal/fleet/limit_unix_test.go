//go:build unix

package fleet

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestOpenFileLimitRaised: a gkessh started with its soft open-file limit
// under the hard one (a shell's `ulimit -Sn 256`, the usual soft 1024)
// works with the hard one. Go's runtime raises the soft limit at start,
// to one under the hard limit (syscall/rlimit.go, go.dev/issue/46279; on
// macOS to kern.maxfilesperproc at most); ParallelLimit relies on that
// instead of a setrlimit of its own, and this checks it still happens.
// The test binary starts itself so.
func TestOpenFileLimitRaised(t *testing.T) {
	if os.Getenv("GKESSH_TEST_OPEN_FILES") == "child" {
		files, ok := openFileLimit()
		fmt.Printf("open-file limit %d %v\n", files, ok)
		return
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max < 512 || lim.Max > 1<<20 {
		t.Skipf("hard open-file limit %d: nothing to raise to, or more than the kernel takes", lim.Max)
	}
	cmd := exec.Command("sh", "-c", `ulimit -Sn 256 && exec "$0" -test.run='^TestOpenFileLimitRaised$'`, os.Args[0])
	cmd.Env = append(os.Environ(), "GKESSH_TEST_OPEN_FILES=child")
	out, err := cmd.CombinedOutput()
	var files uint64
	var ok bool
	if i := strings.Index(string(out), "open-file limit "); i >= 0 {
		fmt.Sscanf(string(out[i:]), "open-file limit %d %t", &files, &ok)
	}
	// Go takes one under the hard limit, to notice a prlimit from outside.
	if err != nil || !ok || files < lim.Max-1 {
		t.Errorf("started under ulimit -Sn 256 (hard %d): %v, limit %d, want %d or more:\n%s", lim.Max, err, files, lim.Max-1, out)
	}
}
