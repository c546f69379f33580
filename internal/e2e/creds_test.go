//go:build unix

package e2e

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/emulator"
)

// credsWorld is an emulator started with --adc-file, with accounts for
// every credential source, and the ssh config block written.
type credsWorld struct {
	*world
	adc    string // the service-account key file --adc-file wrote
	adcSA  string // its account
	user   string // the login user on the nodes
	node   string
	sshCfg string
}

const (
	e2eProject = "demo-project"
	deployer   = "deployer@demo-project.iam.gserviceaccount.com"
	ann        = "ann@example.com"
)

func startCredsWorld(t *testing.T, args ...string) *credsWorld {
	t.Helper()
	need(t, "ssh")
	adc := filepath.Join(t.TempDir(), "adc.json")
	w := startEmulator(t, append([]string{"--sshd", "openssh", "--nodes", "1", "--propagation-delay", "0s", "--adc-file", adc}, args...)...)
	var key struct {
		ClientEmail string `json:"client_email"`
	}
	b, err := os.ReadFile(adc)
	if err != nil || json.Unmarshal(b, &key) != nil || key.ClientEmail == "" {
		t.Fatalf("--adc-file wrote %q (%v)", b, err)
	}
	if fi, err := os.Stat(adc); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("--adc-file mode %v, %v; want 0600", fi.Mode(), err)
	}
	cw := &credsWorld{world: w, adc: adc, adcSA: key.ClientEmail, user: loginUser(t), node: w.nodes()[0].Name}
	// The deployer service account, which the ADC account may impersonate.
	w.control("POST", "/control/accounts", map[string]any{"type": "service_account", "email": deployer,
		"projects": []string{e2eProject}, "tokenCreators": []string{cw.adcSA}}, nil)
	w.run("gkessh", "config-ssh", "--user", cw.user)
	cw.sshCfg = filepath.Join(w.home, ".ssh", "config")
	return cw
}

// account registers an account and writes its credentials file.
func (w *credsWorld) account(t *testing.T, typ, email string) string {
	t.Helper()
	var file json.RawMessage
	w.control("POST", "/control/accounts", map[string]any{"type": typ, "email": email, "projects": []string{e2eProject}}, &file)
	path := filepath.Join(t.TempDir(), typ+".json")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// with returns a copy of the environment without the emulator's token
// file, with a fresh gcloud directory and these variables.
func (w *credsWorld) with(t *testing.T, gcloudDir string, vars ...string) []string {
	var env []string
	for _, v := range w.env {
		if !strings.HasPrefix(v, "GKESSH_ACCESS_TOKEN_FILE=") && !strings.HasPrefix(v, "CLOUDSDK_") && !strings.HasPrefix(v, "GOOGLE_APPLICATION_CREDENTIALS=") {
			env = append(env, v)
		}
	}
	for _, v := range w.env {
		if strings.HasPrefix(v, "CLOUDSDK_CORE_PROJECT=") || strings.HasPrefix(v, "CLOUDSDK_API_ENDPOINT_OVERRIDES_") {
			env = append(env, v)
		}
	}
	return append(append(env, "CLOUDSDK_CONFIG="+gcloudDir), vars...)
}

// runEnv runs prog with env and returns its combined output and exit status.
func (w *credsWorld) runEnv(env []string, prog string, args ...string) (string, int) {
	cmd := w.command(prog, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		w.t.Fatalf("%s: %v", prog, err)
	}
	return string(out), 0
}

// TestCredentialSources logs in with `gkessh NODE -- id` and runs real ssh
// through `gkessh proxy` with each credential source in turn; the
// emulator records which principal opened the tunnels.
func TestCredentialSources(t *testing.T) {
	w := startCredsWorld(t)
	userFile := w.account(t, "authorized_user", ann)
	tokenFile := filepath.Join(w.stateDir, "access-token")
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	owner := "owner@" + e2eProject + ".example" // the emulator's own token
	base := w.base

	// gcloud's stored login: what `gcloud auth login` leaves (an
	// authorized_user adc.json without token_uri, gcloud's client) and
	// auth/token_host pointing gcloud, and gkessh, at the emulator.
	gcloudLogin := t.TempDir()
	var user map[string]any
	b, _ := os.ReadFile(userFile)
	json.Unmarshal(b, &user)
	delete(user, "token_uri")
	user["client_id"], user["client_secret"] = "32555940559.apps.googleusercontent.com", "ZmssLNjJy2998hD4CTg2ejr2"
	b, _ = json.Marshal(user)
	writeFile(t, filepath.Join(gcloudLogin, "legacy_credentials", ann, "adc.json"), string(b))
	writeFile(t, filepath.Join(gcloudLogin, "configurations", "config_default"),
		"[core]\naccount = "+ann+"\nproject = "+e2eProject+"\n[auth]\ntoken_host = "+base+"/token\n")

	// gcloud properties naming a token file and a credentials file.
	tokenProp, fileProp := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(tokenProp, "configurations", "config_default"), "[auth]\naccess_token_file = "+tokenFile+"\n")
	writeFile(t, filepath.Join(fileProp, "configurations", "config_default"), "[auth]\ncredential_file_override = "+w.adc+"\n")

	cases := []struct {
		name      string
		gcloudDir string
		vars      []string
		principal string
		grants    int64 // token grants the login and the ssh make, at most
	}{
		{"token file", t.TempDir(), []string{"GKESSH_ACCESS_TOKEN_FILE=" + tokenFile}, owner, 0},
		{"CLOUDSDK_AUTH_ACCESS_TOKEN", t.TempDir(), []string{"CLOUDSDK_AUTH_ACCESS_TOKEN=" + strings.TrimSpace(string(tok))}, owner, 0},
		{"auth/access_token_file", tokenProp, []string{"GOOGLE_APPLICATION_CREDENTIALS=" + userFile}, owner, 0},
		{"auth/credential_file_override", fileProp, []string{"GOOGLE_APPLICATION_CREDENTIALS=" + userFile}, w.adcSA, 1},
		{"service-account ADC file", t.TempDir(), []string{"GOOGLE_APPLICATION_CREDENTIALS=" + w.adc}, w.adcSA, 1},
		{"authorized_user ADC file", t.TempDir(), []string{"GOOGLE_APPLICATION_CREDENTIALS=" + userFile}, ann, 1},
		{"gcloud login, no ADC", gcloudLogin, nil, ann, 1},
		{"impersonation on ADC", t.TempDir(), []string{"GOOGLE_APPLICATION_CREDENTIALS=" + w.adc, "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT=" + deployer}, deployer, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := w.with(t, tc.gcloudDir, tc.vars...)
			env = append(env, "XDG_CACHE_HOME="+t.TempDir()) // a cold token cache
			w.control("POST", "/control/stats/reset", nil, nil)
			if out, code := w.runEnv(env, "gkessh", w.user+"@"+w.node, "--", "id"); code != 0 || !strings.Contains(out, "uid=") {
				t.Fatalf("gkessh %s -- id: exit %d\n%s", w.node, code, out)
			}
			if out, code := w.runEnv(env, "ssh", "-F", w.sshCfg, w.node, "echo", "via-proxy"); code != 0 || strings.TrimSpace(out) != "via-proxy" {
				t.Fatalf("ssh through gkessh proxy: exit %d\n%s", code, out)
			}
			st := w.stats()
			if st.TunnelsBy[tc.principal] < 2 || len(st.TunnelsBy) != 1 {
				t.Errorf("tunnels by %v, want all (at least 2) by %s", st.TunnelsBy, tc.principal)
			}
			// The login fetched the tokens; the proxy found them cached.
			if st.TokenGrants > tc.grants {
				t.Errorf("%d token grants, want at most %d", st.TokenGrants, tc.grants)
			}
		})
	}
}

// TestImpersonationRefused: a principal that may not impersonate the
// service account gets IAM's answer and exit 255, from the login and the
// proxy, and nothing changes on the node.
func TestImpersonationRefused(t *testing.T) {
	w := startCredsWorld(t)
	userFile := w.account(t, "authorized_user", ann) // not a token creator on deployer
	env := w.with(t, t.TempDir(), "GOOGLE_APPLICATION_CREDENTIALS="+userFile, "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT="+deployer)
	w.control("POST", "/control/stats/reset", nil, nil)
	out, code := w.runEnv(env, "gkessh", w.user+"@"+w.node, "--", "id")
	if code != 255 || !strings.Contains(out, "iam.serviceAccounts.getAccessToken") || !strings.Contains(out, "roles/iam.serviceAccountTokenCreator") || !strings.Contains(out, deployer) {
		t.Errorf("login: exit %d, want 255 naming the permission, the role and the account:\n%s", code, out)
	}
	if out, code := w.runEnv(env, "ssh", "-F", w.sshCfg, w.node, "true"); code != 255 || !strings.Contains(out, "roles/iam.serviceAccountTokenCreator") {
		t.Errorf("ssh through the proxy: exit %d, want 255 with the hint:\n%s", code, out)
	}
	if st := w.stats(); st.MetadataWrites != 0 || st.Tunnels != 0 {
		t.Errorf("stats %+v: a refused impersonation must change nothing", st)
	}
}

// TestShortTokensLongTransfer: with 3-second tokens and the relay cutting
// every websocket after 8 MiB, 64 MiB through `gkessh proxy` arrives
// intact: each resume asks the shared source, which fetches anew.
func TestShortTokensLongTransfer(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB through ssh")
	}
	w := startCredsWorld(t, "--token-lifetime", "3s")
	env := w.with(t, t.TempDir(), "GOOGLE_APPLICATION_CREDENTIALS="+w.adc)
	w.control("POST", "/control/faults", emulator.Faults{DropAfterBytes: 8 << 20}, nil)
	src := filepath.Join(w.home, "payload")
	writeRandom(t, src, 64<<20)
	dst := src + ".copy"
	// The nodes share this machine's file system.
	cmd := w.command("ssh", "-F", w.sshCfg, w.node, "cat > "+dst)
	cmd.Env = env
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Half, then a pause past the token lifetime, then the rest: the
	// resumes after the pause need a new token however fast the machine is.
	go func() {
		defer stdin.Close()
		if _, err := io.CopyN(stdin, in, 32<<20); err != nil {
			return
		}
		time.Sleep(4 * time.Second)
		io.Copy(stdin, in)
	}()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh: %v\n%s", err, out)
	}
	if a, b := sha256File(t, src), sha256File(t, dst); a != b {
		t.Fatalf("sha256 %s sent, %s arrived", a, b)
	}
	st := w.stats()
	if st.Tunnels < 8 {
		t.Errorf("%d websockets, want the relay to have cut at least 7 times", st.Tunnels)
	}
	if st.TokenGrants < 2 {
		t.Errorf("%d token grants, want new tokens as the 3-second ones ran out", st.TokenGrants)
	}
	t.Logf("%d websockets, %d token grants", st.Tunnels, st.TokenGrants)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRotatedTokenFile: a token file rotated while `gkessh proxy` runs is
// read again when the relay refuses the old token on a reconnect: the
// transfer goes on as the new token's principal and arrives intact.
func TestRotatedTokenFile(t *testing.T) {
	if testing.Short() {
		t.Skip("32 MiB through ssh")
	}
	w := startCredsWorld(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	project := []string{e2eProject}
	w.control("POST", "/control/tokens", map[string]any{"token": "tok-old", "projects": project, "principal": "old@example.com"}, nil)
	w.control("POST", "/control/tokens", map[string]any{"token": "tok-new", "projects": project, "principal": "new@example.com"}, nil)
	writeFile(t, tokenFile, "tok-old\n")
	env := w.with(t, t.TempDir(), "GKESSH_ACCESS_TOKEN_FILE="+tokenFile)
	w.control("POST", "/control/faults", emulator.Faults{DropAfterBytes: 4 << 20}, nil)
	w.control("POST", "/control/stats/reset", nil, nil)

	src := filepath.Join(w.home, "payload")
	writeRandom(t, src, 32<<20)
	dst := src + ".copy"
	cmd := w.command("ssh", "-F", w.sshCfg, w.node, "cat > "+dst)
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	// The first MiB goes with the old token; then it expires and the
	// file holds the new one.
	if _, err := io.CopyN(stdin, in, 1<<20); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { fi, err := os.Stat(dst); return err == nil && fi.Size() > 0 })
	w.control("POST", "/control/tokens", map[string]any{"token": "tok-old", "projects": project, "principal": "old@example.com", "expiresIn": "0s"}, nil)
	writeFile(t, tokenFile, "tok-new\n")
	if _, err := io.Copy(stdin, in); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ssh: %v\n%s", err, out.String())
	}
	if a, b := sha256File(t, src), sha256File(t, dst); a != b {
		t.Fatalf("sha256 %s sent, %s arrived", a, b)
	}
	if by := w.stats().TunnelsBy; by["new@example.com"] == 0 {
		t.Errorf("tunnels by %v: want reconnects with the rotated token", by)
	}
}

// waitFor polls cond until it holds, failing the test after 30 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after 30 s")
		}
	}
}
