//go:build unix

package cli

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// TestProxyBinaryRefused: config-ssh and inventory refuse to write a
// ProxyCommand naming a gkessh that go run or go test built in a go-build
// temporary directory, or one in Go's build cache: once it is gone any
// local user can create that path, and ssh would run it. Nothing is
// written, and the message says to build gkessh. A built binary anywhere
// else is taken. (Before, config-ssh wrote
// the deleted /tmp/go-build… path)
func TestProxyBinaryRefused(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 1})
	tmp, cache := os.TempDir(), filepath.Join(e.home, "gocache")
	e.setenv("GOCACHE", cache)
	e.setenv("GOTMPDIR", filepath.Join(e.home, "gotmp"))
	cases := []struct {
		self    string
		refused bool
	}{
		{filepath.Join(tmp, "go-build3462222637", "b001", "exe", "gkessh"), true},
		{filepath.Join(e.home, "gotmp", "go-build1", "b001", "exe", "gkessh"), true},
		{filepath.Join(cache, "ab", "gkessh"), true},
		{gkesshBinary(t), false},
		{filepath.Join(e.home, "go", "bin", "gkessh"), false},
		{filepath.Join(tmp, "gkessh-go-build", "gkessh"), false},
	}
	for _, tc := range cases {
		for _, args := range [][]string{{"config-ssh"}, {"inventory", "--list"}} {
			t.Run(args[0]+tc.self, func(t *testing.T) {
				var out, errb strings.Builder
				stdio := Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}
				d := e.deps(stdio)
				d.executable = func() (string, error) { return tc.self, nil }
				cfg := filepath.Join(e.home, ".ssh", "config")
				os.Remove(cfg)
				code := mainWith(context.Background(), append([]string{"gkessh"}, args...), stdio, d)
				_, statErr := os.Stat(cfg)
				written := statErr == nil || out.Len() > 0
				if !tc.refused {
					if code != 0 || !written {
						t.Errorf("exit %d, written %v: %s", code, written, errb.String())
					}
					return
				}
				if code != exitOther || written || !errors.Is(statErr, fs.ErrNotExist) {
					t.Errorf("exit %d, written %v, want %d and nothing", code, written, exitOther)
				}
				for _, w := range []string{"temporary build (" + tc.self, "make build, or go install ./cmd/gkessh"} {
					if !strings.Contains(errb.String(), w) {
						t.Errorf("stderr lacks %q:\n%s", w, errb.String())
					}
				}
			})
		}
	}
}
