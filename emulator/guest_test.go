//go:build unix

package emulator

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/keys"
	"golang.org/x/crypto/ssh"
	compute "google.golang.org/api/compute/v1"
)

func metadataOf(kv map[string]string) *compute.Metadata {
	md := &compute.Metadata{}
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		md.Items = append(md.Items, item(k, kv[k]))
	}
	return md
}

// rendered turns installed keys into comparable authorized_keys text.
func rendered(m map[string][]ssh.PublicKey) map[string][]string {
	out := map[string][]string{}
	for u, ks := range m {
		for _, k := range ks {
			out[u] = append(out[u], string(ssh.MarshalAuthorizedKey(k)))
		}
	}
	return out
}

func TestGuestRules(t *testing.T) {
	a, b, c := testkey.Public(t), testkey.Public(t), testkey.Public(t)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	line := func(user string, k ssh.PublicKey) string { return keys.FormatLine(user, k, user+"@laptop") }
	soon := now.Add(time.Hour)
	cases := []struct {
		name        string
		inst, proj  map[string]string
		want        map[string][]ssh.PublicKey
		wantExpiry  time.Time
		wantSkipped int
	}{
		{name: "project ssh-keys", proj: map[string]string{"ssh-keys": line("alice", a)}, want: map[string][]ssh.PublicKey{"alice": {a}}},
		{name: "project sshKeys", proj: map[string]string{"sshKeys": line("bob", b)}, want: map[string][]ssh.PublicKey{"bob": {b}}},
		{
			name: "instance and project merge",
			inst: map[string]string{"ssh-keys": line("alice", a)},
			proj: map[string]string{"ssh-keys": line("bob", b), "sshKeys": line("carol", c)},
			want: map[string][]ssh.PublicKey{"alice": {a}, "bob": {b}, "carol": {c}},
		},
		{
			name: "instance blocks project keys",
			inst: map[string]string{"ssh-keys": line("alice", a), "block-project-ssh-keys": "true"},
			proj: map[string]string{"ssh-keys": line("bob", b)},
			want: map[string][]ssh.PublicKey{"alice": {a}},
		},
		{
			name: "block flag parses like strconv.ParseBool",
			inst: map[string]string{"block-project-ssh-keys": "1"},
			proj: map[string]string{"ssh-keys": line("bob", b)},
			want: map[string][]ssh.PublicKey{},
		},
		{
			name: "unparsable block flag is false",
			inst: map[string]string{"block-project-ssh-keys": "yes"},
			proj: map[string]string{"ssh-keys": line("bob", b)},
			want: map[string][]ssh.PublicKey{"bob": {b}},
		},
		{
			name: "project block flag ignored",
			inst: map[string]string{"ssh-keys": line("alice", a)},
			proj: map[string]string{"ssh-keys": line("bob", b), "block-project-ssh-keys": "TRUE"},
			want: map[string][]ssh.PublicKey{"alice": {a}, "bob": {b}},
		},
		{
			name: "instance sshKeys blocks project keys",
			inst: map[string]string{"sshKeys": line("carol", c), "ssh-keys": line("alice", a)},
			proj: map[string]string{"ssh-keys": line("bob", b)},
			want: map[string][]ssh.PublicKey{"alice": {a}, "carol": {c}},
		},
		{
			// The agent tests the raw value for "" (unmarshal.go).
			name: "blank instance sshKeys blocks project keys too",
			inst: map[string]string{"sshKeys": " \n"},
			proj: map[string]string{"ssh-keys": line("bob", b)},
			want: map[string][]ssh.PublicKey{},
		},
		{
			name: "empty instance sshKeys does not block",
			inst: map[string]string{"sshKeys": ""},
			proj: map[string]string{"ssh-keys": line("bob", b)},
			want: map[string][]ssh.PublicKey{"bob": {b}},
		},
		{
			name:       "expiring key not yet expired",
			proj:       map[string]string{"ssh-keys": keys.FormatExpiringLine("alice", a, soon) + "\n" + line("bob", b)},
			want:       map[string][]ssh.PublicKey{"alice": {a}, "bob": {b}},
			wantExpiry: soon,
		},
		{
			name:        "expired key dropped",
			proj:        map[string]string{"ssh-keys": keys.FormatExpiringLine("alice", a, now.Add(-time.Second)) + "\n" + line("bob", b)},
			want:        map[string][]ssh.PublicKey{"bob": {b}},
			wantSkipped: 1,
		},
		{
			name: "invalid lines and user names skipped",
			proj: map[string]string{"ssh-keys": "\n" + line("bad user", a) + "\n" + line("-dash", a) + "\n" +
				"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 nouser\n" + "alice:ssh-ed25519 notbase64\n" +
				keys.FormatLine("alice", a, `google-ssh {"userName":"alice"}`) + "\n" +
				line("bob", b) + "\n\n"},
			want:        map[string][]ssh.PublicKey{"bob": {b}},
			wantSkipped: 5,
		},
		{
			name: "OS Login on the instance",
			inst: map[string]string{"enable-oslogin": "TRUE", "ssh-keys": line("alice", a)},
			proj: map[string]string{"ssh-keys": line("bob", b)},
			want: map[string][]ssh.PublicKey{},
		},
		{
			name: "OS Login on the project",
			inst: map[string]string{"ssh-keys": line("alice", a)},
			proj: map[string]string{"enable-oslogin": "true"},
			want: map[string][]ssh.PublicKey{},
		},
		{
			name: "instance turns project OS Login off",
			inst: map[string]string{"enable-oslogin": "false", "ssh-keys": line("alice", a)},
			proj: map[string]string{"enable-oslogin": "true"},
			want: map[string][]ssh.PublicKey{"alice": {a}},
		},
		{
			name: "unparsable instance value: the project's OS Login counts",
			inst: map[string]string{"enable-oslogin": "no thanks", "ssh-keys": line("alice", a)},
			proj: map[string]string{"enable-oslogin": "TRUE"},
			want: map[string][]ssh.PublicKey{},
		},
		{
			name: "unparsable block-project-ssh-keys does not block",
			inst: map[string]string{"block-project-ssh-keys": "yes"},
			proj: map[string]string{"ssh-keys": line("bob", b)},
			want: map[string][]ssh.PublicKey{"bob": {b}},
		},
		{
			name: "same key twice installed once, two keys kept in order",
			inst: map[string]string{"ssh-keys": line("alice", a) + "\n" + line("alice", b)},
			proj: map[string]string{"ssh-keys": line("alice", a)},
			want: map[string][]ssh.PublicKey{"alice": {a, b}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var skipped []string
			got, expiry := authorizedKeys(viewOf(metadataOf(tc.inst), metadataOf(tc.proj)), now, map[string]string{},
				func(line string, _ error) { skipped = append(skipped, line) })
			if g, w := fmt.Sprint(rendered(got)), fmt.Sprint(rendered(tc.want)); g != w {
				t.Errorf("installed %s\nwant      %s", g, w)
			}
			if !expiry.Equal(tc.wantExpiry) {
				t.Errorf("next expiry %v, want %v", expiry, tc.wantExpiry)
			}
			if len(skipped) != tc.wantSkipped {
				t.Errorf("skipped %q, want %d lines", skipped, tc.wantSkipped)
			}
		})
	}
}

// TestGuestRemembersInvalidLines: like Google's agent (metadatasshkey.go,
// invalidKeys), the emulator's remembers the lines it found invalid,
// expired ones too, and skips them unread from then on, for as long as it
// runs, also after they left the metadata; a name only useradd refuses is
// tried again each time. The control API shows them.
func TestGuestRemembersInvalidLines(t *testing.T) {
	srv, hs := newTestServer(t, Config{Nodes: 1})
	n := srv.Node(srv.Nodes()[0])
	f := useFakeSSHD(t, n)
	a, b := testkey.Public(t), testkey.Public(t)
	expired := keys.FormatExpiringLine("alice", a, time.Now().Add(-time.Minute))
	lines := []string{"nouser-line", "bad user:" + keys.FormatLine("x", a, "c")[2:], expired}
	dash := keys.FormatLine("-dash", b, "c")
	ok := keys.FormatLine("bob", b, "bob@laptop")
	all := strings.Join(append(lines, dash, ok), "\n")
	if err := srv.SetProjectMetadata(map[string]*string{"ssh-keys": &all}); err != nil {
		t.Fatal(err)
	}
	for got := f.nextInstall(t, 10*time.Second); len(got["bob"]) != 1; got = f.nextInstall(t, 10*time.Second) {
	}
	var shown []InvalidKey
	if code := ctl(t, hs, "GET", "/control/nodes/"+n.Name+"/invalid-keys", nil, &shown); code != 200 {
		t.Fatalf("GET invalid-keys: %d", code)
	}
	var got []string
	for _, k := range shown {
		got = append(got, k.Line)
		if k.Reason == "" {
			t.Errorf("%q has no reason", k.Line)
		}
	}
	want := slices.Sorted(slices.Values(lines))
	if !slices.Equal(got, want) {
		t.Errorf("remembered %q, want %q (not %q: useradd's refusal is tried again)", got, want, dash)
	}
	// Gone from the metadata, still remembered.
	if err := srv.SetProjectMetadata(map[string]*string{"ssh-keys": &ok}); err != nil {
		t.Fatal(err)
	}
	if got := n.InvalidKeys(); len(got) != len(lines) {
		t.Errorf("after the lines left the metadata: %v", got)
	}
	// Remembered lines are not read again.
	remembered := map[string]string{}
	for _, k := range n.InvalidKeys() {
		remembered[k.Line] = k.Reason
	}
	var skipped []string
	authorizedKeys(guestView{keys: all}, time.Now(), remembered, func(line string, _ error) { skipped = append(skipped, line) })
	if !slices.Equal(skipped, []string{dash}) {
		t.Errorf("skipped again %q, want only %q", skipped, dash)
	}
}

// TestGuestPropagationDelay checks that each change takes at least the
// delay to reach the node, and that changes arrive in order, also when a
// second comes while the first is still on its way.
func TestGuestPropagationDelay(t *testing.T) {
	// Ordering, not timing: a change is never installed before its delay
	// has passed, and changes arrive in order. How late they arrive is the
	// scheduler's business, so only a generous bound applies.
	const delay = 300 * time.Millisecond
	srv, _ := newTestServer(t, Config{Nodes: 1, PropagationDelay: delay})
	n := srv.Node(srv.Nodes()[0])
	f := useFakeSSHD(t, n)
	a, b := testkey.Public(t), testkey.Public(t)
	lines := keys.FormatLine("alice", a, "")

	t0 := time.Now()
	if err := srv.SetProjectMetadata(map[string]*string{"ssh-keys": &lines}); err != nil {
		t.Fatal(err)
	}
	// Read, then look at the clock: if the delay had not passed when the
	// clock was read, it had not when the keys were.
	got := n.InstalledKeys()
	if early := time.Since(t0); early < delay && len(got) != 0 {
		t.Fatalf("keys installed %v after %v, before the %v delay", rendered(got), early, delay)
	}
	lines += "\n" + keys.FormatLine("bob", b, "")
	t1 := time.Now()
	if err := srv.SetProjectMetadata(map[string]*string{"ssh-keys": &lines}); err != nil {
		t.Fatal(err)
	}
	for {
		got := f.nextInstall(t, 10*time.Second)
		_, alice := got["alice"]
		_, bob := got["bob"]
		switch {
		case alice && time.Since(t0) < delay:
			t.Fatalf("alice installed %v after her change, before the %v delay", time.Since(t0), delay)
		case bob && time.Since(t1) < delay:
			t.Fatalf("bob installed %v after his change, before the %v delay", time.Since(t1), delay)
		case bob && !alice:
			t.Fatalf("installed %v: the later change arrived without the earlier one", rendered(got))
		}
		if bob {
			return
		}
	}
}

// TestGuestExpiryAndRemoval: an expired key goes, never before its expiry,
// and deleting ssh-keys removes the rest. Like the real agent's, the
// removal waits for nothing but the expiry, so only ordering is checked.
func TestGuestExpiryAndRemoval(t *testing.T) {
	srv, _ := newTestServer(t, Config{Nodes: 1})
	n := srv.Node(srv.Nodes()[0])
	f := useFakeSSHD(t, n)
	a, b := testkey.Public(t), testkey.Public(t)
	expire := time.Now().Add(400 * time.Millisecond)
	lines := keys.FormatLine("alice", a, fmt.Sprintf(`google-ssh {"userName":"alice","expireOn":%q}`, expire.Format(time.RFC3339Nano))) +
		"\n" + keys.FormatLine("bob", b, "")
	if err := srv.SetInstanceMetadata(n.Name, map[string]*string{"ssh-keys": &lines}); err != nil {
		t.Fatal(err)
	}
	for {
		got := rendered(f.nextInstall(t, 10*time.Second))
		if len(got["bob"]) != 1 {
			t.Fatalf("installed %v, want bob's key", got)
		}
		if len(got["alice"]) == 1 {
			continue // until her key expires
		}
		// The agent dropped her key at its own now, which was before ours.
		if early := time.Until(expire); early > 0 {
			t.Fatalf("alice's key removed %v before it expires", early)
		}
		break
	}
	if err := srv.SetInstanceMetadata(n.Name, map[string]*string{"ssh-keys": nil}); err != nil {
		t.Fatal(err)
	}
	if got := f.nextInstall(t, 10*time.Second); len(got) != 0 {
		t.Errorf("after deleting ssh-keys installed %v, want none", rendered(got))
	}
}

// TestGuestWithoutSSHD checks that the agent installs keys on a node with no
// SSH server.
func TestGuestWithoutSSHD(t *testing.T) {
	srv, _ := newTestServer(t, Config{Nodes: 1})
	n := srv.Node(srv.Nodes()[0])
	useFakeSSHD(t, n)
	n.mu.Lock()
	n.sshd = nil
	n.mu.Unlock()
	line := keys.FormatLine("alice", testkey.Public(t), "")
	if err := srv.SetProjectMetadata(map[string]*string{"ssh-keys": &line}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(n.InstalledKeys()["alice"]) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no key installed on a node without sshd")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
