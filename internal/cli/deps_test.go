//go:build unix

package cli

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps heavy or test-only packages out of the gkessh binary, and
// OS-specific calls out of the CLI, on each OS gkessh ships for. Every
// package linked is resident in a `gkessh proxy` that ssh keeps open per
// connection, and the Compute client stack (compute/v1 and its transport)
// was most of the binary for eight REST calls.
func TestDeps(t *testing.T) {
	banned := map[string]string{
		"google.golang.org/api":             "gce speaks the Compute REST API itself",
		"google.golang.org/grpc":            "nothing in gkessh speaks gRPC",
		"google.golang.org/protobuf":        "nothing in gkessh speaks protobuf",
		"cloud.google.com/go/auth":          "golang.org/x/oauth2/google is enough",
		"go.opentelemetry.io":               "gkessh does not trace",
		"github.com/google/s2a-go":          "gkessh does not use S2A",
		"github.com/gkessh/gkessh/emulator": "the emulator is for tests and the demo only",
	}
	for _, goos := range []string{"linux", "darwin", "windows"} {
		t.Run(goos, func(t *testing.T) {
			t.Parallel()
			linked := map[string][]string{} // banned prefix → its packages linked
			for _, pkg := range goList(t, goos, "-deps", "github.com/gkessh/gkessh/cmd/gkessh") {
				for prefix := range banned {
					if pkg == prefix || strings.HasPrefix(pkg, prefix+"/") {
						linked[prefix] = append(linked[prefix], pkg)
					}
				}
			}
			for prefix, pkgs := range linked {
				t.Errorf("cmd/gkessh links %d packages of %s (%s): keep them out; 'GOOS=%s go mod why %s' shows who imports it",
					len(pkgs), prefix, banned[prefix], goos, pkgs[0])
			}
			// OS-specific calls live behind small functions in the package
			// that owns the concern, not in the CLI.
			for _, imp := range goList(t, goos, "-f", `{{join .Imports "\n"}}`, "github.com/gkessh/gkessh/internal/cli") {
				if strings.HasPrefix(imp, "golang.org/x/sys/") {
					t.Errorf("internal/cli imports %s for %s: put the OS-specific code in the package that owns it", imp, goos)
				}
			}
		})
	}
}

// goList runs go list with args for goos and returns the words it prints.
func goList(t *testing.T, goos string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Env = append(os.Environ(), "GOOS="+goos)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("GOOS=%s go list %v: %v\n%s", goos, args, err, stderr.Bytes())
	}
	return strings.Fields(string(out))
}
