package knownhosts

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/filelock"
	"github.com/gkessh/gkessh/internal/testkey"
)

func line(host string, k ssh.PublicKey) string {
	return host + " " + string(ssh.MarshalAuthorizedKey(k))
}

func hashed(host string) string {
	salt := make([]byte, 20)
	if _, err := rand.Read(salt); err != nil {
		panic(err)
	}
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(host))
	return "|1|" + base64.StdEncoding.EncodeToString(salt) + "|" + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestHostAlias(t *testing.T) {
	if got := HostAlias(1000000000000007919); got != "compute.1000000000000007919" {
		t.Errorf("HostAlias = %q", got)
	}
}

func TestLookupExactAlias(t *testing.T) {
	k := make([]ssh.PublicKey, 6)
	for i := range k {
		k[i] = testkey.Public(t)
	}
	data := "# comment\n" +
		line("compute.12", k[0]) + // prefix of the alias: gcloud's bug, not ours
		line("compute.1234", k[1]) +
		line("compute.123", k[2]) +
		line("other,compute.123", k[3]) +
		line(hashed("compute.123"), k[4]) +
		"@revoked " + line("compute.123", k[5]) +
		"compute.123 ssh-ed25519 not-base64\n" +
		"garbage\n"
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, shared := range []bool{false, true} {
		kh := file(path, shared)
		rec, err := kh.Lookup("compute.123")
		if err != nil {
			t.Fatal(err)
		}
		// In the file's order: plain and hashed names alike.
		want := []ssh.PublicKey{k[2], k[3], k[4]}
		if !slices.EqualFunc(rec.Keys, want, sameKey) {
			t.Errorf("%s: got keys %s, want %s", kh.kind(), Fingerprints(rec.Keys), Fingerprints(want))
		}
		if !slices.EqualFunc(rec.Revoked, []ssh.PublicKey{k[5]}, sameKey) {
			t.Errorf("%s: revoked = %s", kh.kind(), Fingerprints(rec.Revoked))
		}
		if rec, err := file(path+".missing", shared).Lookup("compute.123"); err != nil || len(rec.Keys) != 0 {
			t.Errorf("%s: missing file: %v, %v", kh.kind(), rec, err)
		}
	}
}

// file is the file at path, Shared or read at every call: the tests run
// both.
func file(path string, shared bool) KnownHosts {
	if shared {
		return Shared(path)
	}
	return KnownHosts{Path: path}
}

func (k KnownHosts) kind() string {
	if k.shared != nil {
		return "Shared"
	}
	return "KnownHosts"
}

func sameKey(a, b ssh.PublicKey) bool { return containsKey([]ssh.PublicKey{a}, b) }

func TestAdd(t *testing.T) {
	for _, shared := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), ".ssh")
		kh := file(filepath.Join(dir, KnownHostsName), shared)
		t.Run(kh.kind(), func(t *testing.T) { testAdd(t, dir, kh) })
	}
}

func testAdd(t *testing.T, dir string, kh KnownHosts) {
	a, b := testkey.Public(t), testkey.Public(t)
	if err := kh.Add(t.Context(), "compute.1", a, a, b); err != nil {
		t.Fatal(err)
	}
	if err := kh.Add(t.Context(), "compute.1", b); err != nil { // already there
		t.Fatal(err)
	}
	// A file without a final newline, as an editor may leave it.
	f, err := os.OpenFile(kh.Path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("# no newline"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := kh.Add(t.Context(), "compute.2", a); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(kh.Path)
	if err != nil {
		t.Fatal(err)
	}
	want := line("compute.1", a) + line("compute.1", b) + "# no newline\n" + line("compute.2", a)
	if string(got) != want {
		t.Errorf("file:\n%s\nwant:\n%s", got, want)
	}
	for path, mode := range map[string]os.FileMode{dir: 0o700, kh.Path: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
}

func TestParseStrictMode(t *testing.T) {
	for in, want := range map[string]StrictMode{"": StrictAcceptNew, "yes": StrictYes, "NO": StrictNo, "accept-new": StrictAcceptNew, "ask": StrictAsk} {
		if got, err := ParseStrictMode(in); err != nil || got != want {
			t.Errorf("ParseStrictMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseStrictMode("maybe"); err == nil {
		t.Error("maybe accepted")
	}
}

func TestVerifier(t *testing.T) {
	const alias = "compute.42"
	known, other, published := testkey.Public(t), testkey.Public(t), testkey.Public(t)
	type want int
	const (
		accept want = iota
		changed
		unknown
		revoked
		changedPublished // Prepare refuses: the guest publishes other keys
	)
	cases := []struct {
		name      string
		mode      StrictMode
		recorded  string // file contents
		published []ssh.PublicKey
		presented ssh.PublicKey
		want      want
		pinned    bool   // Prepare recorded the published keys
		file      string // file contents afterwards; "" means unchanged
		accept    bool   // --accept-changed-host-keys
	}{
		{"recorded key", StrictYes, line(alias, known), nil, known, accept, false, "", false},
		{"changed key", StrictAcceptNew, line(alias, known), nil, other, changed, false, "", false},
		{"changed key published", StrictAcceptNew, line(alias, known), []ssh.PublicKey{other}, other, changedPublished, false, "", false},
		// Accepted, the published keys replace every recorded one: no pile-up.
		{"changed key published, accepted", StrictYes, line(alias, known) + line("compute.7", known) + line(alias, published), []ssh.PublicKey{other}, other, accept, false, line("compute.7", known) + line(alias, other), true},
		{"changed key not published, accept given", StrictYes, line(alias, known), []ssh.PublicKey{known}, other, changed, false, "", true},
		{"changed key, no", StrictNo, line(alias, known), nil, other, accept, false, "", false},
		{"revoked", StrictNo, line(alias, known) + "@revoked " + line(alias, known), nil, known, revoked, false, "", false},
		{"published pinned", StrictYes, "", []ssh.PublicKey{published}, published, accept, true, line(alias, published), false},
		{"published, other presented", StrictAcceptNew, "", []ssh.PublicKey{published}, other, changed, true, line(alias, published), false},
		{"first use", StrictAcceptNew, "", nil, other, accept, false, line(alias, other), false},
		{"first use, yes", StrictYes, "", nil, other, unknown, false, "-", false},
		{"first use, no", StrictNo, "", []ssh.PublicKey{published}, other, accept, false, line(alias, other), false},
	}
	// Each case twice: with the published keys read up front, and read
	// late (Publish), which comes to the same outcome and reads them only
	// for a key not recorded.
	for _, tc := range cases {
		for _, late := range []bool{false, true} {
			name := tc.name
			if late {
				name += ", read late"
			}
			t.Run(name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "kh")
				if tc.recorded != "" {
					if err := os.WriteFile(path, []byte(tc.recorded), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				rec, err := KnownHosts{Path: path}.Lookup(alias)
				if err != nil {
					t.Fatal(err)
				}
				var warn strings.Builder
				var pinned Pinned
				v := Verifier{File: KnownHosts{Path: path}, Node: "n1", Alias: alias, Source: "n1's guest attributes", Mode: tc.mode, Warn: &warn, Accept: tc.accept,
					OnPin: func(p Pinned) { pinned = p }}
				reads := 0
				if late {
					v.Publish = func() ([]ssh.PublicKey, error) { reads++; return tc.published, nil }
				} else {
					v.Published = tc.published
				}
				check, err := v.Prepare(t.Context())
				addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
				if tc.want == changedPublished && late && err == nil {
					// Read late, the callback refuses the change.
					err = check.Callback(alias+":22", addr, tc.presented)
				}
				// Read late, a recorded key costs no read; anything else
				// one, whatever the retries (StrictNo: none).
				wantReads := 1
				if tc.mode == StrictNo || (!tc.accept && containsKey(rec.Keys, tc.presented) && !containsKey(rec.Revoked, tc.presented)) {
					wantReads = 0
				}
				defer func() {
					if late && reads != wantReads {
						t.Errorf("the published keys were read %d times, want %d", reads, wantReads)
					}
				}()
				var cerr *HostKeyChangedError
				if tc.want == changedPublished {
					if !errors.As(err, &cerr) {
						t.Fatalf("got %v, want a HostKeyChangedError", err)
					}
					for _, want := range []string{"n1", alias, "n1's guest attributes", ssh.FingerprintSHA256(known), ssh.FingerprintSHA256(other), "CHANGED"} {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("message lacks %q: %v", want, err)
						}
					}
					if got, _ := os.ReadFile(path); string(got) != tc.recorded {
						t.Errorf("file changed to %q", got)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				// Twice, as propagation retries do: first use records once.
				for i := 0; i < 2; i++ {
					err = check.Callback(alias+":22", addr, tc.presented)
				}
				if (len(pinned.Added) > 0) != tc.pinned {
					t.Errorf("pinned %v, want %v", pinned.Added, tc.pinned)
				}
				var kerr *HostKeyError
				switch {
				case tc.want == accept && err != nil:
					t.Fatalf("refused: %v", err)
				case tc.want != accept && !errors.As(err, &kerr):
					t.Fatalf("got %v, want a HostKeyError", err)
				case tc.want == changed && (len(kerr.Want) == 0 || !strings.Contains(err.Error(), "CHANGED") || !strings.Contains(err.Error(), "ssh-keygen -R "+alias)):
					t.Errorf("changed key: %v", err)
				case tc.want == unknown && len(kerr.Want) != 0:
					t.Errorf("unknown host: %v", err)
				case tc.want == revoked && !kerr.Revoked:
					t.Errorf("revoked: %v", err)
				}
				got, err := os.ReadFile(path)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				switch tc.file {
				case "":
					if string(got) != tc.recorded {
						t.Errorf("file changed to %q", got)
					}
				case "-":
					if len(got) != 0 {
						t.Errorf("file written: %q", got)
					}
				default:
					if string(got) != tc.file {
						t.Errorf("file %q, want %q", got, tc.file)
					}
				}
				t.Logf("warnings: %s", warn.String())
			})
		}
	}
}

func TestAlgorithms(t *testing.T) {
	k := testkey.Public(t)
	if got := algorithms([]ssh.PublicKey{k, k}); len(got) != 1 || got[0] != ssh.KeyAlgoED25519 {
		t.Errorf("algorithms = %v", got)
	}
}

// TestAddRefusesHostileAlias: an alias that is neither compute.ID nor an
// instance name could write markers or other hosts into the file.
func TestAddRefusesHostileAlias(t *testing.T) {
	kh := KnownHosts{Path: filepath.Join(t.TempDir(), KnownHostsName)}
	k := testkey.Public(t)
	for _, alias := range []string{"n\n@cert-authority *", "*", "a,b", "n x", "@revoked", "compute.01", "compute.", "compute.1x", "..", "gke-\u0441luster"} {
		if err := kh.Add(t.Context(), alias, k); err == nil {
			t.Errorf("Add(%q) accepted", alias)
		}
	}
	if _, err := os.Stat(kh.Path); !os.IsNotExist(err) {
		t.Fatalf("file written: %v", err)
	}
	for _, alias := range []string{"compute.1", "compute.18446744073709551615", "gke-cluster-default-pool-3e89aeb0-b47k"} {
		if err := kh.Add(t.Context(), alias, k); err != nil {
			t.Errorf("Add(%q) = %v", alias, err)
		}
	}
}

// TestWritesFollowLinks: Add and Replace both write a symlinked
// known_hosts (a dotfiles checkout) through to its target, which keeps its
// mode, and both leave a read-only file alone. Replace used to put a
// regular file in the link's place and rewrite read-only files.
func TestWritesFollowLinks(t *testing.T) {
	old, k1, k2 := testkey.Public(t), testkey.Public(t), testkey.Public(t)
	write := map[string]func(KnownHosts) error{
		"Add":     func(kh KnownHosts) error { return kh.Add(t.Context(), "compute.7", k1) },
		"Replace": func(kh KnownHosts) error { return kh.Replace(t.Context(), "compute.7", k1, k2) },
	}
	for name, w := range write {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "dotfiles", "known_hosts")
			os.MkdirAll(filepath.Dir(target), 0o700)
			if err := os.WriteFile(target, []byte(line("other", old)), 0o640); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(dir, "known_hosts")
			if err := os.Symlink(target, link); err != nil {
				t.Skipf("symlink: %v", err)
			}
			if err := w(KnownHosts{Path: link}); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("known_hosts is no longer a link: %v", err)
			}
			if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o640 {
				t.Errorf("target mode %v, want 0640", fi.Mode())
			}
			rec, err := KnownHosts{Path: target}.Lookup("compute.7")
			if err != nil || !containsKey(rec.Keys, k1) {
				t.Errorf("target lacks the new key: %v", err)
			}

			ro := filepath.Join(dir, "ro")
			if err := os.WriteFile(ro, []byte(line("compute.7", old)), 0o444); err != nil {
				t.Fatal(err)
			}
			if err := w(KnownHosts{Path: ro}); err == nil {
				t.Error("a read-only known_hosts was rewritten")
			}
		})
	}
}

// TestSharedSeesOtherWriters: a Shared file notices what other processes
// write (a rewrite, an append in place) and keeps its own writes.
func TestSharedSeesOtherWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_hosts")
	a, b, c := testkey.Public(t), testkey.Public(t), testkey.Public(t)
	kh := Shared(path)
	if rec, err := kh.Lookup("compute.1"); err != nil || len(rec.Keys) != 0 {
		t.Fatalf("empty: %v, %v", rec, err)
	}
	other := KnownHosts{Path: path}
	if err := other.Add(t.Context(), "compute.1", a); err != nil { // a rewrite, as another gkessh makes
		t.Fatal(err)
	}
	if err := kh.Add(t.Context(), "compute.2", b); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0) // an editor's append
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(line("compute.3", c))
	f.Close()
	for alias, want := range map[string]ssh.PublicKey{"compute.1": a, "compute.2": b, "compute.3": c} {
		rec, err := kh.Lookup(alias)
		if err != nil || !slices.EqualFunc(rec.Keys, []ssh.PublicKey{want}, sameKey) {
			t.Errorf("%s: %s, %v", alias, Fingerprints(rec.Keys), err)
		}
	}
	if err := kh.Replace(t.Context(), "compute.1", c); err != nil {
		t.Fatal(err)
	}
	if rec, err := kh.Lookup("compute.1"); err != nil || !slices.EqualFunc(rec.Keys, []ssh.PublicKey{c}, sameKey) {
		t.Errorf("after Replace: %s, %v", Fingerprints(rec.Keys), err)
	}
}

// TestSharedAddsTogether: many nodes pinned at once each get their lines,
// once, and Lookup sees them all.
func TestSharedAddsTogether(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_hosts")
	kh := Shared(path)
	const n = 100
	keys := make([]ssh.PublicKey, n)
	for i := range keys {
		keys[i] = testkey.Public(t)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := kh.Add(t.Context(), fmt.Sprintf("compute.%d", i), keys[i], keys[(i+1)%n]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), "\n"); lines != 2*n {
		t.Errorf("%d lines, want %d", lines, 2*n)
	}
	for i := range n {
		rec, err := kh.Lookup(fmt.Sprintf("compute.%d", i))
		if err != nil || !slices.EqualFunc(rec.Keys, []ssh.PublicKey{keys[i], keys[(i+1)%n]}, sameKey) {
			t.Errorf("compute.%d: %s, %v", i, Fingerprints(rec.Keys), err)
		}
	}
}

// sharedFleet writes a known_hosts file of n nodes (compute.0 and on, one
// key each, the same) and returns its Shared copy, parsed once, and the
// key.
func sharedFleet(t *testing.T, n int) (KnownHosts, ssh.PublicKey) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	var b strings.Builder
	key := testkey.Public(t)
	for i := range n {
		b.WriteString(line(fmt.Sprintf("compute.%d", i), key))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	kh := Shared(path)
	if _, err := kh.Lookup("compute.0"); err != nil {
		t.Fatal(err)
	}
	return kh, key
}

// TestSharedParsesOnce: looking up one node of a fleet's file costs a
// map lookup, not a parse of every node's lines.
func TestSharedParsesOnce(t *testing.T) {
	const n = 1000
	kh, _ := sharedFleet(t, n)
	i := 0
	allocs := testing.AllocsPerRun(20, func() {
		i++
		if rec, _ := kh.Lookup(fmt.Sprintf("compute.%d", i)); len(rec.Keys) != 1 {
			t.Fatalf("compute.%d: %d keys", i, len(rec.Keys))
		}
	})
	// A parse of the file allocates several times per line.
	if allocs > n/10 {
		t.Errorf("a Lookup in a file of %d hosts allocates %.0f times: it parses the file", n, allocs)
	}
}

// TestSharedAddsDoNotReparse: while a fleet's first contacts add their
// lines, the other nodes' lookups keep to the parse the adds update, and
// do not parse the whole file again at each rewrite (13% of a cold
// 1000-node run's CPU went to that).
func TestSharedAddsDoNotReparse(t *testing.T) {
	kh, key := sharedFleet(t, 500)
	parses := func() int {
		kh.shared.mu.Lock()
		defer kh.shared.mu.Unlock()
		return kh.shared.parses
	}
	before := parses()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if rec, err := kh.Lookup("compute.1"); err != nil || len(rec.Keys) != 1 {
					t.Errorf("compute.1: %d keys, %v", len(rec.Keys), err)
					return
				}
			}
		})
	}
	const adds = 50
	for i := range adds {
		if err := kh.Add(t.Context(), fmt.Sprintf("compute.%d", 1000+i), key); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if n := parses() - before; n > 0 {
		t.Errorf("%d parses of the file during %d adds, want none", n, adds)
	}
	if rec, err := kh.Lookup(fmt.Sprintf("compute.%d", 1000+adds-1)); err != nil || len(rec.Keys) != 1 {
		t.Errorf("the last add: %d keys recorded, %v", len(rec.Keys), err)
	}
}

// TestPin: the published keys are recorded on first contact; more keys
// beside every recorded one join them (a known_hosts where ssh, or gcloud
// through it, recorded the one key it was shown); a recorded key no
// longer published is a change, refused unless accepted.
func TestPin(t *testing.T) {
	a, b, c := testkey.Public(t), testkey.Public(t), testkey.Public(t)
	for _, tc := range []struct {
		name                 string
		recorded, published  []ssh.PublicKey
		accept               bool
		changed              bool
		added, replaced, now []ssh.PublicKey
	}{
		{name: "first contact", published: []ssh.PublicKey{a, b}, added: []ssh.PublicKey{a, b}, now: []ssh.PublicKey{a, b}},
		{name: "same keys", recorded: []ssh.PublicKey{a, b}, published: []ssh.PublicKey{b, a}, now: []ssh.PublicKey{a, b}},
		{name: "fewer published", recorded: []ssh.PublicKey{a, b}, published: []ssh.PublicKey{a}, now: []ssh.PublicKey{a, b}},
		{name: "one recorded, more published", recorded: []ssh.PublicKey{a}, published: []ssh.PublicKey{b, a, c}, added: []ssh.PublicKey{b, c}, now: []ssh.PublicKey{a, b, c}},
		{name: "recorded key gone", recorded: []ssh.PublicKey{a}, published: []ssh.PublicKey{b}, changed: true, now: []ssh.PublicKey{a}},
		{name: "recorded key gone, more published", recorded: []ssh.PublicKey{a, c}, published: []ssh.PublicKey{a, b}, changed: true, now: []ssh.PublicKey{a, c}},
		{name: "accepted change", recorded: []ssh.PublicKey{a}, published: []ssh.PublicKey{b}, accept: true, replaced: []ssh.PublicKey{a}, now: []ssh.PublicKey{b}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var data strings.Builder
			for _, k := range tc.recorded {
				data.WriteString(line("compute.7", k))
			}
			path := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(path, []byte(data.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			kh := KnownHosts{Path: path}
			p, err := kh.Pin(t.Context(), "node", "compute.7", "guest attributes", tc.published, tc.accept)
			var cerr *HostKeyChangedError
			if errors.As(err, &cerr) != tc.changed || (!tc.changed && err != nil) {
				t.Fatalf("Pin: %v, want changed %v", err, tc.changed)
			}
			if !sameKeys(p.Added, tc.added) || !sameKeys(p.Replaced, tc.replaced) {
				t.Errorf("Pin added %d, replaced %d keys; want %d, %d", len(p.Added), len(p.Replaced), len(tc.added), len(tc.replaced))
			}
			rec, err := (KnownHosts{Path: path}).Lookup("compute.7")
			if err != nil || !sameKeys(rec.Keys, tc.now) {
				t.Errorf("recorded now: %d keys (%v), want %d", len(rec.Keys), err, len(tc.now))
			}
		})
	}
}

func sameKeys(x, y []ssh.PublicKey) bool {
	return len(x) == len(y) && !slices.ContainsFunc(x, func(k ssh.PublicKey) bool { return !containsKey(y, k) })
}

// TestLockWaitEndsWithCtx: while another holds the file's lock, each
// writer given a cancelled ctx returns ctx's error at once, not after the
// minute the lock is waited for, and writes nothing.
func TestLockWaitEndsWithCtx(t *testing.T) {
	key := testkey.Public(t)
	writers := map[string]func(context.Context, KnownHosts) error{
		"Add":     func(ctx context.Context, kh KnownHosts) error { return kh.Add(ctx, "compute.7", key) },
		"Replace": func(ctx context.Context, kh KnownHosts) error { return kh.Replace(ctx, "compute.7", key) },
		"Pin": func(ctx context.Context, kh KnownHosts) error {
			_, err := kh.Pin(ctx, "node", "compute.7", "guest attributes", []ssh.PublicKey{key}, false)
			return err
		},
		"Prepare": func(ctx context.Context, kh KnownHosts) error {
			_, err := Verifier{File: kh, Node: "node", Alias: "compute.7", Published: []ssh.PublicKey{key}, Mode: StrictYes}.Prepare(ctx)
			return err
		},
	}
	for name, write := range writers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), KnownHostsName)
			release, err := filelock.Lock(t.Context(), path+".lock")
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			done := make(chan error, 1)
			go func() { done <- write(ctx, KnownHosts{Path: path}) }()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("err = %v, want context.Canceled", err)
				}
			case <-time.After(2 * time.Minute): // generous: it returns at once
				t.Fatal("still waiting for the lock 2 minutes after ctx was cancelled")
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s written (%v)", path, err)
			}
		})
	}
}
