package cli

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps heavy or test-only packages out of the gkessh binary. Every
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
	cmd := exec.Command("go", "list", "-deps", "github.com/gkessh/gkessh/cmd/gkessh")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.Bytes())
	}
	linked := map[string][]string{} // banned prefix → its packages linked
	for _, pkg := range strings.Fields(string(out)) {
		for prefix := range banned {
			if pkg == prefix || strings.HasPrefix(pkg, prefix+"/") {
				linked[prefix] = append(linked[prefix], pkg)
			}
		}
	}
	for prefix, pkgs := range linked {
		t.Errorf("cmd/gkessh links %d packages of %s (%s): keep them out; 'go mod why %s' shows who imports it",
			len(pkgs), prefix, banned[prefix], pkgs[0])
	}
}
