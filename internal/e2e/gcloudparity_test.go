//go:build unix

package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// TestGcloudAndGkesshSendAlike runs `gcloud compute ssh` and gkessh on the
// same emulator nodes, as the same account with the same key pair (the
// one gcloud makes, ~/.ssh/google_compute_engine), and compares what
// reached the emulator (its request journal):
//   - the project metadata line, expiring at the same absolute time
//     (--ssh-key-expiration) and permanent: byte for byte; and a
//     permanent line gkessh wrote is one gcloud takes for its own (no
//     second write);
//   - on a node under OS Login, importSshPublicKey: path, query (projectId,
//     regions) and body (the key with its comment, expirationTimeUsec),
//     and the notice naming the OS Login user used instead of the one
//     asked for; with the key in the profile, a new expiry is
//     sshPublicKeys.patch (path, updateMask, body) and no import.
//
// --troubleshoot is compared in TestGcloudAndGkesshTroubleshootAlike.
func TestGcloudAndGkesshSendAlike(t *testing.T) {
	need(t, "gcloud", "python3", "ssh")
	if testing.Short() {
		t.Skip("runs the real gcloud")
	}
	adc := filepath.Join(t.TempDir(), "adc.json")
	w := startEmulator(t, "--nodes", "2", "--adc-file", adc, "--tls", "--propagation-delay", "300ms")
	w.env = gcloudTLSEnv(t, w)
	mustGcloud(t, w.env, "auth", "activate-service-account", "--key-file", adc)
	// gkessh then takes gcloud's login, as gcloud's own account: the
	// emulator's token file would be another principal.
	w.env = append(w.env, "GKESSH_ACCESS_TOKEN_FILE=")
	nodes := w.nodes()
	metaNode, osLoginNode := nodes[0], nodes[1]
	user := loginUser(t)
	relay := w.getenv("GKESSH_IAP_ENDPOINT")
	const expiration = "2030-08-29T18:52:51Z"

	gcloudSSH := func(n emulator.NodeInfo, flags ...string) (string, string) {
		args := append([]string{"compute", "ssh", user + "@" + n.Name, "--zone", n.Zone, "--tunnel-through-iap",
			"--iap-tunnel-url-override=" + relay, "--command=true", "--quiet"}, flags...)
		out, stderr, err := gcloud(t, w.env, args...)
		if err != nil {
			t.Fatalf("gcloud %s: %v\n%s%s\ngcloud's log:\n%s", strings.Join(args, " "), err, out, stderr, gcloudLog(t, filepath.Join(w.home, "gcloud")))
		}
		return out, stderr
	}
	gkesshSSH := func(n emulator.NodeInfo, flags ...string) string {
		cmd := w.command("gkessh", append(append([]string{"--user", user, "--zone", n.Zone}, flags...), n.Name, "--", "true")...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if out, err := cmd.Output(); err != nil {
			t.Fatalf("gkessh %s: %v\n%s%s", strings.Join(cmd.Args, " "), err, out, stderr.String())
		}
		return stderr.String()
	}
	journal := func() []emulator.Request {
		var rs []emulator.Request
		w.control("GET", "/control/requests", nil, &rs)
		w.control("POST", "/control/requests/reset", nil, nil)
		return rs
	}
	clearKeys := func() {
		w.control("POST", "/control/project", map[string]any{"metadata": map[string]any{"ssh-keys": nil}}, nil)
	}

	// Project metadata, an expiring line, then a permanent one.
	for _, c := range []struct {
		name           string
		gcloud, gkessh []string
	}{
		{"expiring", []string{"--ssh-key-expiration=" + expiration}, []string{"--ssh-key-expiration", expiration}},
		{"permanent", nil, []string{"--key-expire-after", "0"}},
	} {
		clearKeys()
		journal()
		gcloudSSH(metaNode, c.gcloud...)
		byGcloud := addedLines(t, journal())
		clearKeys()
		journal()
		gkesshSSH(metaNode, c.gkessh...)
		byGkessh := addedLines(t, journal())
		t.Logf("%s: gcloud wrote %q, gkessh %q", c.name, byGcloud, byGkessh)
		if len(byGcloud) != 1 || len(byGkessh) != 1 || byGcloud[0] != byGkessh[0] {
			t.Errorf("%s: the project lines differ:\ngcloud %q\ngkessh %q", c.name, byGcloud, byGkessh)
		}
	}
	// gkessh's permanent line is still there: gcloud takes it for its own.
	gcloudSSH(metaNode)
	if again := addedLines(t, journal()); len(again) != 0 {
		t.Errorf("gcloud wrote %q after gkessh's permanent line", again)
	}

	// OS Login: the import.
	w.control("POST", "/control/nodes/"+osLoginNode.Name, map[string]any{"metadata": map[string]any{"enable-oslogin": "TRUE"}}, nil)
	journal()
	_, gcloudErr := gcloudSSH(osLoginNode, "--ssh-key-expiration="+expiration)
	byGcloud := imports(journal())
	// The key leaves the profile, by gcloud's hand: a key already there is
	// not imported again.
	mustGcloud(t, w.env, "compute", "os-login", "ssh-keys", "remove", "--key-file", filepath.Join(w.home, ".ssh", "google_compute_engine.pub"))
	journal()
	gkesshErr := gkesshSSH(osLoginNode, "--ssh-key-expiration", expiration)
	byGkessh := imports(journal())
	t.Logf("OS Login: gcloud imported %+v, gkessh %+v", byGcloud, byGkessh)
	if len(byGcloud) != 1 || len(byGkessh) != 1 {
		t.Fatalf("imports: gcloud %d, gkessh %d, want one each", len(byGcloud), len(byGkessh))
	}
	g, k := byGcloud[0], byGkessh[0]
	if g.Path != k.Path {
		t.Errorf("import paths: gcloud %s, gkessh %s", g.Path, k.Path)
	}
	gq, _ := url.ParseQuery(g.Query)
	kq, _ := url.ParseQuery(k.Query)
	gq.Del("prettyPrint")
	kq.Del("prettyPrint")
	kq.Del("alt")
	gq.Del("alt")
	if gq.Encode() != kq.Encode() {
		t.Errorf("import queries: gcloud %s, gkessh %s", gq.Encode(), kq.Encode())
	}
	var gb, kb map[string]any
	json.Unmarshal([]byte(g.Body), &gb)
	json.Unmarshal([]byte(k.Body), &kb)
	if gs, ks := mustJSON(gb), mustJSON(kb); gs != ks {
		t.Errorf("import bodies: gcloud %s, gkessh %s", gs, ks)
	}
	// The key is in the profile now: a new expiry is a patch of it, not
	// another import (each its own time, so both have something to change).
	gcloudSSH(osLoginNode, "--ssh-key-expiration=2031-01-01T00:00:00Z")
	gp := patches(journal())
	gkesshSSH(osLoginNode, "--ssh-key-expiration", "2031-02-01T00:00:00Z")
	kp := patches(journal())
	t.Logf("OS Login, key present: gcloud %+v, gkessh %+v", gp, kp)
	if len(gp) != 1 || len(kp) != 1 {
		t.Fatalf("patches: gcloud %d, gkessh %d, want one each", len(gp), len(kp))
	}
	if gp[0].Path != kp[0].Path {
		t.Errorf("patch paths: gcloud %s, gkessh %s", gp[0].Path, kp[0].Path)
	}
	gq, _ = url.ParseQuery(gp[0].Query)
	kq, _ = url.ParseQuery(kp[0].Query)
	if gq.Get("updateMask") != kq.Get("updateMask") {
		t.Errorf("patch updateMask: gcloud %q, gkessh %q", gq.Get("updateMask"), kq.Get("updateMask"))
	}
	gb, kb = map[string]any{}, map[string]any{}
	json.Unmarshal([]byte(gp[0].Body), &gb)
	json.Unmarshal([]byte(kp[0].Body), &kb)
	if gb["expirationTimeUsec"] != "1924992000000000" || kb["expirationTimeUsec"] != "1927670400000000" {
		t.Errorf("patched expiries: gcloud %v, gkessh %v", gb["expirationTimeUsec"], kb["expirationTimeUsec"])
	}
	delete(gb, "expirationTimeUsec")
	delete(kb, "expirationTimeUsec")
	if gk, kk := fmt.Sprint(gb["key"]), fmt.Sprint(kb["key"]); gk != kk {
		t.Errorf("patched keys: gcloud …%q, gkessh …%q", gk[max(0, len(gk)-30):], kk[max(0, len(kk)-30):])
	}
	delete(gb, "key")
	delete(kb, "key")
	if gs, ks := mustJSON(gb), mustJSON(kb); gs != ks {
		t.Errorf("patch bodies besides the expiry: gcloud %s, gkessh %s", gs, ks)
	}

	const using = "Using OS Login user"
	// gcloud: "Using OS Login user [sa_…] instead of requested user [root]".
	if !strings.Contains(gcloudErr, using) || !strings.Contains(gkesshErr, using) {
		t.Errorf("the OS Login user notice: gcloud %q, gkessh %q", gcloudErr, gkesshErr)
	}
}

// addedLines are the ssh-keys lines the metadata writes in rs set, minus
// what the previous write held (gcloud and gkessh each read before they
// write).
func addedLines(t *testing.T, rs []emulator.Request) []string {
	var added []string
	for _, r := range rs {
		if r.Method != "POST" || !strings.HasSuffix(r.Path, "/setCommonInstanceMetadata") && !strings.HasSuffix(r.Path, "/setMetadata") {
			continue
		}
		var md struct {
			Items []struct {
				Key   string  `json:"key"`
				Value *string `json:"value"`
			} `json:"items"`
		}
		if err := json.Unmarshal([]byte(r.Body), &md); err != nil {
			t.Fatalf("metadata write %s: %v: %s", r.Path, err, r.Body)
		}
		for _, it := range md.Items {
			if it.Key == "ssh-keys" && it.Value != nil {
				for _, l := range strings.Split(*it.Value, "\n") {
					if l != "" {
						added = append(added, l)
					}
				}
			}
		}
	}
	return added
}

// patches are the sshPublicKeys.patch requests in rs.
func patches(rs []emulator.Request) []emulator.Request {
	var out []emulator.Request
	for _, r := range rs {
		if r.Method == "PATCH" && strings.Contains(r.Path, "/sshPublicKeys/") {
			out = append(out, r)
		}
	}
	return out
}

// imports are the importSshPublicKey requests in rs.
func imports(rs []emulator.Request) []emulator.Request {
	var out []emulator.Request
	for _, r := range rs {
		if strings.HasSuffix(r.Path, ":importSshPublicKey") {
			out = append(out, r)
		}
	}
	return out
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
