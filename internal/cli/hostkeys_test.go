//go:build unix

package cli

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/emulator"
	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/knownhosts"
)

// TestHostKeyPolicy: login, config-ssh and inventory handle a node whose
// guest publishes other host keys than the recorded ones the same way:
// refused, naming the node, the old and new fingerprints and where the new
// ones came from, with nothing written; with --accept-changed-host-keys the
// published keys replace every recorded one (no stale keys left).
func TestHostKeyPolicy(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	n := e.node(0)
	alias := knownhosts.HostAlias(n.ID)
	stale1, stale2 := testkey.Public(t), testkey.Public(t)
	other := "compute.1 " + string(ssh.MarshalAuthorizedKey(stale1))
	recorded := other + alias + " " + string(ssh.MarshalAuthorizedKey(stale1)) + alias + " " + string(ssh.MarshalAuthorizedKey(stale2))
	var published strings.Builder
	for _, k := range n.HostKeys() {
		fmt.Fprintf(&published, "%s %s", alias, ssh.MarshalAuthorizedKey(k))
	}
	cfg := filepath.Join(e.home, ".ssh", "config")
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"login", []string{n.Name, "--", "true"}, 255},
		{"config-ssh", []string{"config-ssh"}, exitOther},
		{"inventory", []string{"inventory", "--list"}, exitOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.MkdirAll(filepath.Dir(e.knownHosts()), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(e.knownHosts(), []byte(recorded), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Remove(cfg)
			writes := e.srv.Stats().MetadataWrites
			out, stderr, code := e.run(tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			for _, want := range []string{n.Name, ssh.FingerprintSHA256(stale1), ssh.FingerprintSHA256(stale2),
				ssh.FingerprintSHA256(n.HostKeys()[0]), "guest attributes", "--accept-changed-host-keys"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if out != "" {
				t.Errorf("refused, yet stdout %q", out)
			}
			if got, _ := os.ReadFile(e.knownHosts()); string(got) != recorded {
				t.Errorf("known hosts changed:\n%s", got)
			}
			if _, err := os.Stat(cfg); err == nil {
				t.Errorf("refused, yet %s was written", cfg)
			}
			if w := e.srv.Stats().MetadataWrites; w != writes {
				t.Errorf("refused, yet %d metadata writes", w-writes)
			}

			accepted := append([]string{tc.args[0], "--accept-changed-host-keys"}, tc.args[1:]...)
			_, stderr, code = e.run(accepted...)
			if code != 0 || !strings.Contains(stderr, "Replaced the host keys of "+n.Name) {
				t.Fatalf("accepted: exit %d; stderr:\n%s", code, stderr)
			}
			if got, _ := os.ReadFile(e.knownHosts()); string(got) != other+published.String() {
				t.Errorf("known hosts after accepting:\n%s\nwant the other host's line and the published keys only:\n%s", got, other+published.String())
			}
		})
	}
}

// TestHostKeyRefusedLeavesNoMetadata: a server host key refused at login
// (here one its guest does not publish) fails before any key line is
// written, as a refused tunnel does.
func TestHostKeyRefusedLeavesNoMetadata(t *testing.T) {
	e := newParallelSSHEnv(t, "builtin", 1)
	n := e.node(0)
	if err := e.srv.SetInstanceMetadata(n.Name, map[string]*string{"enable-guest-attributes": new("FALSE")}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(e.knownHosts()), 0o700); err != nil {
		t.Fatal(err)
	}
	recorded := testkey.Public(t)
	line := knownhosts.HostAlias(n.ID) + " " + string(ssh.MarshalAuthorizedKey(recorded))
	if err := os.WriteFile(e.knownHosts(), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := e.run(n.Name, "--", "true")
	if code != 255 || !strings.Contains(stderr, "REMOTE HOST IDENTIFICATION HAS CHANGED") {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	// A fact a line, as ssh's own report: each key on its own, the command
	// that clears the record last, and no line of hundreds of characters.
	fp := ssh.FingerprintSHA256(recorded)
	for _, want := range []string{"has CHANGED.\n", "\n  ssh-ed25519 " + fp + "\n", "\n  ssh-keygen -R " + knownhosts.HostAlias(n.ID) + " -f " + e.knownHosts() + "\n"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	for _, l := range strings.Split(stderr, "\n") {
		if len(l) > 200 {
			t.Errorf("a line of %d characters: %s", len(l), l)
		}
	}
	if w := e.srv.Stats().MetadataWrites; w != 0 {
		t.Errorf("%d metadata writes after a refused host key", w)
	}
	if strings.Contains(e.projectItems()["ssh-keys"], "ssh-ed25519") {
		t.Errorf("a key line was left behind: %q", e.projectItems()["ssh-keys"])
	}
}

// TestZoneNarrows: --zone selects the nodes of that zone in config-ssh and
// inventory, as it selects the instance in a login.
func TestZoneNarrows(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 2})
	a, b := e.node(0), e.node(1)
	if a.Zone == b.Zone {
		t.Fatalf("both nodes in %s", a.Zone)
	}
	out, stderr, code := e.run("inventory", "--list", "--zone", b.Zone)
	if code != 0 || !strings.Contains(out, b.Name) || strings.Contains(out, a.Name) {
		t.Errorf("inventory --zone %s: exit %d, want only %s:\n%s%s", b.Zone, code, b.Name, out, stderr)
	}
	cfg := filepath.Join(e.home, "ssh_config")
	if _, stderr, code := e.run("config-ssh", "--ssh-config-file", cfg, "--zone", a.Zone); code != 0 {
		t.Fatalf("config-ssh: exit %d: %s", code, stderr)
	}
	got, _ := os.ReadFile(cfg)
	if !strings.Contains(string(got), "Host "+a.Name) || strings.Contains(string(got), b.Name) {
		t.Errorf("config-ssh --zone %s wrote:\n%s", a.Zone, got)
	}
}

// TestGuestAttributesReadAsGcloud: the published host keys are read where
// gcloud reads them (ssh_utils.py GetHostKeysFromGuestAttributes): the
// instance's enable-guest-attributes when it sets one, else the project's,
// and not at all when neither does.
func TestGuestAttributesReadAsGcloud(t *testing.T) {
	e := newParallelEnv(t, emulator.Config{Nodes: 3})
	unset, off := e.node(0), e.node(1) // node 2 keeps the emulator's TRUE
	if err := e.srv.SetInstanceMetadata(unset.Name, map[string]*string{"enable-guest-attributes": nil}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SetInstanceMetadata(off.Name, map[string]*string{"enable-guest-attributes": ptrTo("FALSE")}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(e.home, "ssh_config")
	for _, tc := range []struct {
		project *string
		read    []int
	}{
		{nil, []int{2}},
		{ptrTo("TRUE"), []int{0, 2}},
		{ptrTo("FALSE"), []int{2}},
	} {
		if err := e.srv.SetProjectMetadata(map[string]*string{"enable-guest-attributes": tc.project}); err != nil {
			t.Fatal(err)
		}
		e.srv.ResetRequests()
		if _, stderr, code := e.run("config-ssh", "--ssh-config-file", cfg); code != 0 {
			t.Fatalf("config-ssh: exit %d: %s", code, stderr)
		}
		read := map[string]bool{}
		for _, r := range e.srv.Requests() {
			if inst, ok := strings.CutSuffix(r.Path, "/getGuestAttributes"); ok {
				read[path.Base(inst)] = true
			}
		}
		var want []string
		for _, i := range tc.read {
			want = append(want, e.node(i).Name)
		}
		var got []string
		for _, name := range e.srv.Nodes() {
			if read[name] {
				got = append(got, name)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			p := "unset"
			if tc.project != nil {
				p = *tc.project
			}
			t.Errorf("project enable-guest-attributes %s: read the guest attributes of %v, want %v", p, got, want)
		}
	}
}

// TestGuestAttributesUnreadNotFatal: when getGuestAttributes fails with
// something other than gcloud's "not found" (here the emulator's 403 and
// 500 faults; what real GCE answers when guest attributes are off is not
// documented), config-ssh and inventory cover the node as one that
// published no host keys, and say so in one warning, as a login does.
func TestGuestAttributesUnreadNotFatal(t *testing.T) {
	for _, status := range []int{403, 500} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := newParallelEnv(t, emulator.Config{Nodes: 2})
			e.srv.SetFaults(emulator.Faults{GuestAttributesStatus: status})
			cfg := filepath.Join(e.home, "ssh_config")
			for _, args := range [][]string{{"config-ssh", "--ssh-config-file", cfg}, {"inventory", "--list"}} {
				out, stderr, code := e.run(args...)
				if code != 0 {
					t.Fatalf("%s: exit %d: %s", args[0], code, stderr)
				}
				if n := strings.Count(stderr, "published host keys not read"); n != 1 || !strings.Contains(stderr, fmt.Sprint(status)) {
					t.Errorf("%s: %d warnings, want one naming the %d:\n%s", args[0], n, status, stderr)
				}
				if args[0] == "config-ssh" {
					b, err := os.ReadFile(cfg)
					if err != nil {
						t.Fatal(err)
					}
					out = string(b)
				}
				for _, name := range e.srv.Nodes() {
					if !strings.Contains(out, name) {
						t.Errorf("%s lacks %s:\n%s", args[0], name, out)
					}
				}
			}
			if known, err := os.ReadFile(e.knownHosts()); err == nil && len(known) > 0 {
				t.Errorf("keys pinned though none could be read:\n%s", known)
			}
		})
	}
}
