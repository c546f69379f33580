package keys

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/testkey"
)

// gcloudPython runs script with the installed gcloud SDK's Python modules
// importable and returns its output; it skips the test when there is no
// SDK or python3.
func gcloudPython(t *testing.T, script string, args ...string) string {
	t.Helper()
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		t.Skip("no gcloud")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	bin, err := filepath.EvalSymlinks(gcloud)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(filepath.Dir(bin))
	lib := filepath.Join(root, "lib")
	if _, err := os.Stat(filepath.Join(lib, "googlecloudsdk")); err != nil {
		t.Skipf("no gcloud SDK source beside %s", bin)
	}
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+lib+string(filepath.ListSeparator)+filepath.Join(lib, "third_party"), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gcloud's python: %v\n%s", err, out)
	}
	return string(out)
}

// TestPermanentLineAsGcloud: the permanent line gkessh writes is, byte for
// byte, the one gcloud compute ssh writes for the same key and user
// (ssh_utils.py: user:TYPE DATA COMMENT), so gcloud's own check finds it
// and adds no second line. Without the key's comment it did not (fidelity
// review §3 row 1: gcloud added a duplicate).
func TestPermanentLineAsGcloud(t *testing.T) {
	if testing.Short() {
		t.Skip("runs gcloud's Python")
	}
	pub := testkey.Public(t)
	type gcase struct {
		Pub   string `json:"pub"`   // the .pub file
		Value string `json:"value"` // ssh-keys after gkessh's write
		line  string
	}
	var cases []gcase
	for _, comment := range []string{"root@vm", "", "Jane Doe@laptop"} {
		pubFile := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n")
		if comment != "" {
			pubFile += " " + comment
		}
		lines, line := Upsert(ParseLines("bob:ssh-rsa AAAA bob@x"), "root", pub, comment, time.Now(), 0, false)
		cases = append(cases, gcase{Pub: pubFile + "\n", Value: JoinLines(lines), line: line})
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	out := gcloudPython(t, `
import json, sys
from googlecloudsdk.command_lib.util.ssh import ssh
from googlecloudsdk.command_lib.compute import ssh_utils
res = []
for c in json.loads(sys.argv[1]):
    key = ssh.Keys.PublicKey.FromKeyString(c["pub"])
    entry = "{user}:{public_key}".format(user="root", public_key=key.ToEntry(include_comment=True))
    res.append([entry, entry in ssh_utils._GetSSHKeyListFromMetadataEntry(c["value"])])
json.dump(res, sys.stdout)
`, string(in))
	var got [][2]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != len(cases) {
		t.Fatalf("gcloud's answer %q: %v", out, err)
	}
	for i, c := range cases {
		if got[i][0] != c.line || got[i][1] != true {
			t.Errorf("%s: gkessh wrote %q; gcloud's line %q, found by gcloud: %v", c.Pub, c.line, got[i][0], got[i][1])
		}
	}
}
