//go:build unix

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/testbin"
)

// gcloudEnv is what every real gcloud run here gets besides the
// emulator's lines: a throw-away configuration directory (never the
// user's: a login or setting made there would outlive the emulator), and
// no waits for things that cannot answer here (the GCE metadata server,
// usage reporting, update checks).
func gcloudEnv(t *testing.T, w *world, config string) []string {
	return append(append([]string(nil), w.env...),
		"CLOUDSDK_CONFIG="+config,
		"CLOUDSDK_PYTHON=python3",
		"CLOUDSDK_CORE_CHECK_GCE_METADATA=false",
		"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true",
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		// Compiled gcloud modules are kept between runs (in a directory of
		// the tests', not the SDK's): each run then starts in seconds.
		"PYTHONDONTWRITEBYTECODE=",
		"PYTHONPYCACHEPREFIX="+gcloudPyCache(t),
	)
}

// gcloudPyCache is the compiled-module cache the package's gcloud runs
// share, in testbin's private directory, which goes when the tests end.
func gcloudPyCache(t *testing.T) string {
	return filepath.Join(testbin.Dir(t), "gcloud-pycache")
}

// gcloud runs the real gcloud in w with env, within two minutes, and
// returns its stdout and stderr.
func gcloud(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "gcloud", args...)
	cmd.Env = env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// mustGcloud is gcloud that fails the test on an error.
func mustGcloud(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, stderr, err := gcloud(t, env, args...)
	if err != nil {
		t.Fatalf("gcloud %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// gcloudLoggedIn starts an emulator with one node and its ADC key file,
// and logs a throw-away gcloud configuration in with that key: the world
// and gcloud's environment. It skips where gcloud cannot run, and under
// -short.
func gcloudLoggedIn(t *testing.T) (*world, []string) {
	t.Helper()
	need(t, "gcloud", "python3")
	if testing.Short() {
		t.Skip("runs the real gcloud")
	}
	adc := filepath.Join(t.TempDir(), "adc.json")
	w := startEmulator(t, "--nodes", "1", "--adc-file", adc)
	env := gcloudEnv(t, w, t.TempDir())
	mustGcloud(t, env, "auth", "activate-service-account", "--key-file", adc)
	return w, env
}

// TestGcloudFromEnvLines: the emulator's lines alone point the real gcloud
// at it: a login from its key file, the
// Compute API, the OS Login profile, and impersonation through IAM
// Credentials with its token refreshes, none of it reaching Google.
func TestGcloudFromEnvLines(t *testing.T) {
	w, env := gcloudLoggedIn(t)
	node := w.nodes()[0].Name
	if got := mustGcloud(t, env, "compute", "instances", "list", "--format=value(name)"); strings.TrimSpace(got) != node {
		t.Errorf("gcloud compute instances list: %q, want %s", got, node)
	}
	const account = "emulator-adc@demo-project.iam.gserviceaccount.com"
	if got := mustGcloud(t, env, "compute", "os-login", "describe-profile", "--format=value(name)"); strings.TrimSpace(got) != account {
		t.Errorf("gcloud compute os-login describe-profile: %q, want %s", got, account)
	}
	const deployer = "deployer@demo-project.iam.gserviceaccount.com"
	w.control("POST", "/control/accounts", map[string]any{
		"type": "service_account", "email": deployer, "projects": []string{"demo-project"},
		"tokenCreators": []string{account},
	}, nil)
	before := w.stats().TokenGrants
	if got := mustGcloud(t, env, "compute", "instances", "describe", node, "--zone", w.nodes()[0].Zone,
		"--impersonate-service-account", deployer, "--format=value(name)"); strings.TrimSpace(got) != node {
		t.Errorf("gcloud compute instances describe as %s: %q", deployer, got)
	}
	if after := w.stats().TokenGrants; after <= before {
		t.Errorf("impersonation minted no token at the emulator (token grants %d -> %d)", before, after)
	}
}

// TestGcloudAddMetadataNo412: gcloud sends a metadata fingerprint back
// re-encoded URL-safe (apitools encodes bytes fields so), and the
// emulator must compare the bytes, not the strings (before, about 30% of
// gcloud's writes got a spurious 412). 20 runs of gcloud's
// `compute project-info add-metadata` all succeed, at least one of them
// on a fingerprint with + or / (the fingerprints follow from the writes,
// so the same ones come every run).
func TestGcloudAddMetadataNo412(t *testing.T) {
	need(t, "gcloud", "python3")
	w := startEmulator(t, "--nodes", "1")
	env := gcloudEnv(t, w, t.TempDir())
	var token string
	for _, kv := range w.env {
		if v, ok := strings.CutPrefix(kv, "GKESSH_ACCESS_TOKEN_FILE="); ok {
			token = v
		}
	}
	type project struct {
		Metadata struct {
			Fingerprint string `json:"fingerprint"`
		} `json:"metadata"`
	}
	differs := 0
	for i := range 20 {
		var p project
		w.control("GET", "/control/project", nil, &p)
		if strings.ContainsAny(p.Metadata.Fingerprint, "+/") {
			differs++ // gcloud will send it back with - or _
		}
		kv := fmt.Sprintf("gcloud-%d=run-%d", i, i)
		if out, stderr, err := gcloud(t, env, "--access-token-file", token, "compute", "project-info", "add-metadata", "--metadata", kv); err != nil {
			t.Errorf("run %d (fingerprint %s): %v\n%s%s", i, p.Metadata.Fingerprint, err, out, stderr)
		}
	}
	if differs == 0 {
		t.Fatal("no fingerprint had a + or /: the runs proved nothing")
	}
	if got := w.stats().MetadataWrites; got != 20 {
		t.Errorf("%d metadata writes, want 20", got)
	}
	t.Logf("%d of 20 fingerprints had + or /", differs)
}

// TestGcloudReadsEmulatorErrors: the real gcloud reads the emulator's
// errors as it reads Google's: Compute's (with an errors array) as
// "Could not fetch resource: - MESSAGE", and OS Login's google.rpc.Status
// as "STATUS: MESSAGE", as gcloud's HttpException formats a body with a
// status (googlecloudsdk/api_lib/util/exceptions.py). With Compute's
// shape for OS Login it printed "HTTPError 401: …" instead.
func TestGcloudReadsEmulatorErrors(t *testing.T) {
	w, env := gcloudLoggedIn(t)
	zone := w.nodes()[0].Zone
	const unauthenticated = "Request had invalid authentication credentials. Expected OAuth 2 access token, " +
		"login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	bad := append(append([]string(nil), env...), "CLOUDSDK_AUTH_ACCESS_TOKEN=not-a-token")
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{env, []string{"compute", "instances", "describe", "nope", "--zone", zone},
			"Could not fetch resource:\n - The resource 'projects/demo-project/zones/" + zone + "/instances/nope' was not found"},
		{bad, []string{"compute", "instances", "describe", "nope", "--zone", zone}, " - " + unauthenticated},
		{bad, []string{"compute", "os-login", "describe-profile"}, ") UNAUTHENTICATED: " + unauthenticated},
	} {
		_, stderr, err := gcloud(t, tc.env, tc.args...)
		if err == nil || !strings.Contains(stderr, tc.want) {
			t.Errorf("gcloud %s: %v, stderr:\n%s\nwant %q", strings.Join(tc.args, " "), err, stderr, tc.want)
		}
	}
}
