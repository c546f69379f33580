//go:build unix

package e2e

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestWarmProxyDialsRelayFirst: ssh through a warm `gkessh proxy`
// (node, key and service-account token cached) through an HTTPS proxy
// opens one connection, the relay's, and nothing before it: no API call
// and no token grant, the OAuth endpoint included. The endpoints are Google's
// own names (no setting), so the proxy's record says which host each
// connection was for; the emulator serves them all under --tls.
func TestWarmProxyDialsRelayFirst(t *testing.T) {
	need(t, "ssh")
	adc := filepath.Join(t.TempDir(), "adc.json")
	w := startEmulator(t, "--nodes", "1", "--sshd", "openssh", "--tls", "--propagation-delay", "0s", "--adc-file", adc)
	node := w.nodes()[0].Name
	p := startHostsProxy(t, strings.TrimPrefix(w.base, "https://"))
	var env []string
	for _, v := range googleEnv(w, p, "GOOGLE_APPLICATION_CREDENTIALS="+adc) {
		if !strings.HasPrefix(v, "GKESSH_ACCESS_TOKEN_FILE=") {
			env = append(env, v)
		}
	}
	if _, stderr, code := w.runEnvStderr(env, "gkessh", "config-ssh", "--user", loginUser(t)); code != 0 {
		t.Fatalf("config-ssh: exit %d\n%s", code, stderr)
	}
	ssh := func(what string) {
		t.Helper()
		out, stderr, code := w.runEnvStderr(env, "ssh", "-F", filepath.Join(w.home, ".ssh", "config"), node, "echo", what)
		if code != 0 || strings.TrimSpace(out) != what {
			t.Fatalf("%s ssh through gkessh proxy: exit %d, %q\n%s", what, code, out, stderr)
		}
	}
	// Cold: the key put on the node, the token fetched.
	ssh("cold")
	if cold := p.targets(); !slices.Contains(cold, "compute.googleapis.com:443") || !slices.Contains(cold, "tunnel.cloudproxy.app:443") {
		t.Fatalf("config-ssh and the cold proxy went to %q, want the Compute API and the relay", cold)
	}
	before := w.stats()
	ssh("warm")
	if got := p.targets(); !slices.Equal(got, []string{"tunnel.cloudproxy.app:443"}) {
		t.Errorf("the warm proxy went to %q, want the relay alone", got)
	}
	after := w.stats()
	if after.APICalls != before.APICalls || after.TokenGrants != before.TokenGrants || after.Tunnels != before.Tunnels+1 {
		t.Errorf("the warm proxy made %d API calls, %d token grants and %d tunnels; want 0, 0, 1",
			after.APICalls-before.APICalls, after.TokenGrants-before.TokenGrants, after.Tunnels-before.Tunnels)
	}
}
