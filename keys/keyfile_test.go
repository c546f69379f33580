package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/gkessh/gkessh/internal/testkey"
)

func TestLoadOrCreateGenerates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".ssh")
	path := filepath.Join(dir, "google_compute_engine")
	kp, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if !kp.Created || kp.Public.Type() != ssh.KeyAlgoED25519 {
		t.Fatalf("created %v type %s, want a new ed25519 key", kp.Created, kp.Public.Type())
	}
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o700 | os.ModeDir}, {path, 0o600}, {path + ".pub", 0o644}} {
		st, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != f.mode {
			t.Errorf("%s mode %v, want %v", f.path, st.Mode(), f.mode)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "-----BEGIN OPENSSH PRIVATE KEY-----") {
		t.Fatalf("private key is not in OpenSSH format: %.40q", b)
	}
	again, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if again.Created || !SameKey(again.Public, kp.Public) {
		t.Fatal("second LoadOrCreate did not reuse the pair")
	}
	sig, err := again.Signer.Sign(rand.Reader, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.Public.Verify([]byte("x"), sig); err != nil {
		t.Fatalf("loaded signer does not match the generated key: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

// TestLoadOrCreateConcurrent: processes racing to create the pair all end up
// with the same, consistent pair.
func TestLoadOrCreateConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	const n = 8
	pubs := make([]ssh.PublicKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			kp, err := LoadOrCreate(path)
			errs[i] = err
			if err == nil {
				pubs[i] = kp.Public
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !SameKey(pubs[i], pubs[0]) {
			t.Fatal("racing LoadOrCreate calls got different keys")
		}
	}
	kp, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !SameKey(kp.Public, pubs[0]) {
		t.Fatal("files do not hold the key the callers got")
	}
}

// pemKey encodes key the way older ssh-keygen and openssl do.
func pemKey(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	var block *pem.Block
	switch k := key.(type) {
	case *rsa.PrivateKey:
		block = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	default:
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	return pem.EncodeToMemory(block)
}

func opensshKey(t *testing.T, key crypto.Signer, passphrase string) []byte {
	t.Helper()
	var block *pem.Block
	var err error
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(key, "test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(key, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func pubLine(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return ssh.MarshalAuthorizedKey(pub)
}

func TestLoadKeyFiles(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edKey := testkey.Key(t)
	tests := []struct {
		name    string
		priv    []byte
		mode    os.FileMode
		pub     []byte // nil: no .pub file
		wantErr string // "" = loads
		broken  bool   // a KeyFileError that is Broken: Replace makes a new pair
	}{
		{"rsa pem (gcloud's ssh-keygen)", pemKey(t, rsaKey), 0o600, pubLine(t, rsaKey), "", false},
		{"rsa openssh", opensshKey(t, rsaKey, ""), 0o600, pubLine(t, rsaKey), "", false},
		{"ecdsa pem", pemKey(t, ecKey), 0o600, pubLine(t, ecKey), "", false},
		{"ed25519 pkcs8", pemKey(t, edKey), 0o600, pubLine(t, edKey), "", false},
		{"ed25519 openssh, .pub missing", opensshKey(t, edKey, ""), 0o400, nil, "", false},
		{"group-readable", opensshKey(t, edKey, ""), 0o640, pubLine(t, edKey), "chmod 600", false},
		{"world-readable", pemKey(t, rsaKey), 0o604, pubLine(t, rsaKey), "unprotected private key file", false},
		{"mismatched .pub", opensshKey(t, edKey, ""), 0o600, pubLine(t, ecKey), "is not the public key of", true},
		{"garbage .pub", opensshKey(t, edKey, ""), 0o600, []byte("ssh-ed25519 !!!\n"), "is not a public key", true},
		{"garbage private key", []byte("not a key\n"), 0o600, pubLine(t, edKey), "not a private key ssh can use", true},
		{"unreadable", opensshKey(t, edKey, ""), 0o000, pubLine(t, edKey), "permission denied", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mode == 0 && os.Geteuid() == 0 {
				t.Skip("root reads any file")
			}
			path := filepath.Join(t.TempDir(), "id")
			if err := os.WriteFile(path, tt.priv, tt.mode); err != nil {
				t.Fatal(err)
			}
			if tt.pub != nil {
				if err := os.WriteFile(path+".pub", tt.pub, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			kp, err := LoadOrCreate(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(strings.ToLower(err.Error()), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				var kfe *KeyFileError
				if broken := errors.As(err, &kfe) && kfe.Broken; broken != tt.broken {
					t.Fatalf("err = %v: broken %v, want %v", err, broken, tt.broken)
				}
				if tt.broken {
					checkReplace(t, path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if kp.Created {
				t.Fatal("an existing key was replaced")
			}
			pub, _, err := readPublic(path + ".pub")
			if err != nil {
				t.Fatalf(".pub not there after load: %v", err)
			}
			if !SameKey(pub, kp.Public) {
				t.Fatal(".pub does not match the loaded key")
			}
		})
	}
}

// checkReplace: Replace makes a new pair at path that loads.
func checkReplace(t *testing.T, path string) {
	t.Helper()
	kp, err := Replace(path)
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	kp.Close()
	if !kp.Created {
		t.Fatal("Replace made no new pair")
	}
	again, err := LoadOrCreate(path)
	if err != nil {
		t.Fatalf("the new pair does not load: %v", err)
	}
	again.Close()
	if !SameKey(again.Public, kp.Public) {
		t.Fatal("the new pair is not the one Replace returned")
	}
}

func TestLoadOrCreateRefusesLonePub(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id")
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(testkey.Fixed(t, 0)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreate(path)
	var kfe *KeyFileError
	if err == nil || !strings.Contains(err.Error(), "does not") || !errors.As(err, &kfe) || !kfe.Broken {
		t.Fatalf("err = %v, want a refusal to overwrite the lone .pub, broken", err)
	}
	checkReplace(t, path)
	if _, err := Load(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "no private key") {
		t.Fatalf("Load of a missing key: err = %v", err)
	}
	// The public key alone is enough to name the key, even with no private key.
	pub, err := PublicKey(path)
	if err != nil || pub.Type() != ssh.KeyAlgoED25519 {
		t.Fatalf("PublicKey = %v, %v", pub, err)
	}
	if _, err := PublicKey(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("PublicKey of nothing succeeded")
	}
}

// serveAgent runs an in-memory ssh-agent holding keys on a unix socket and
// points SSH_AUTH_SOCK at it.
func serveAgent(t *testing.T, keys ...crypto.Signer) {
	t.Helper()
	keyring := agent.NewKeyring()
	for _, k := range keys {
		if err := keyring.Add(agent.AddedKey{PrivateKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	agentSocket(t, func(c net.Conn) { agent.ServeAgent(keyring, c) })
}

// agentSocket serves each connection with serve on a unix socket that
// SSH_AUTH_SOCK points at, and closes them all when the test ends.
func agentSocket(t *testing.T, serve func(net.Conn)) {
	t.Helper()
	// Unix socket paths are limited to about 100 bytes; t.TempDir can be long.
	dir, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(wg.Wait)
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serve(c)
			})
		}
	})
	t.Setenv("SSH_AUTH_SOCK", l.Addr().String())
}

// silentAgent is an ssh-agent that takes requests and never answers. Each
// request read is sent on the returned channel.
func silentAgent(t *testing.T) <-chan struct{} {
	asked := make(chan struct{}, 16)
	agentSocket(t, func(c net.Conn) {
		var b [512]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				return
			}
			select {
			case asked <- struct{}{}:
			default:
			}
		}
	})
	return asked
}

// TestSilentAgent: an agent that accepts and never answers does not hold
// up AgentKeys past its ctx, nor Load past AgentKeys' own bound.
func TestSilentAgent(t *testing.T) {
	// Generous: each bound under test ends the call in 5 s at most.
	const stuck = time.Minute
	wait := func(t *testing.T, done <-chan error) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(stuck):
			t.Fatalf("still waiting for the agent after %v", stuck)
			return nil
		}
	}
	t.Run("ctx cancelled", func(t *testing.T) {
		asked := silentAgent(t)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			signers, conn, err := AgentKeys(ctx)
			if conn != nil || signers != nil {
				err = errors.New("got keys from a silent agent")
			}
			done <- err
		}()
		select {
		case <-asked:
		case <-time.After(stuck):
			t.Fatal("AgentKeys never asked the agent")
		}
		cancel()
		if err := wait(t, done); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("Load", func(t *testing.T) {
		silentAgent(t)
		path := filepath.Join(t.TempDir(), "id")
		if err := os.WriteFile(path, opensshKey(t, testkey.Key(t), "secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			kp, err := Load(path)
			if err == nil {
				kp.Close()
				err = errors.New("loaded through a silent agent")
			}
			done <- err
		}()
		if err := wait(t, done); !errors.Is(err, errAgentSilent) {
			t.Fatalf("err = %v, want %v", err, errAgentSilent)
		}
	})
}

func TestLoadPassphraseProtected(t *testing.T) {
	held, other := testkey.Key(t), testkey.Key(t)
	write := func(t *testing.T, key crypto.Signer) string {
		path := filepath.Join(t.TempDir(), "id")
		if err := os.WriteFile(path, opensshKey(t, key, "secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Run("no agent", func(t *testing.T) {
		t.Setenv("SSH_AUTH_SOCK", "")
		if _, err := LoadOrCreate(write(t, held)); err == nil || !strings.Contains(err.Error(), "passphrase") {
			t.Fatalf("err = %v, want a passphrase refusal", err)
		}
	})
	t.Run("agent lacks the key", func(t *testing.T) {
		serveAgent(t, other)
		if _, err := LoadOrCreate(write(t, held)); err == nil || !strings.Contains(err.Error(), "ssh-add") {
			t.Fatalf("err = %v, want a hint to run ssh-add", err)
		}
	})
	t.Run("agent holds the key", func(t *testing.T) {
		serveAgent(t, other, held)
		kp, err := LoadOrCreate(write(t, held))
		if err != nil {
			t.Fatal(err)
		}
		defer kp.Close()
		sig, err := kp.Signer.Sign(rand.Reader, []byte("data"))
		if err != nil {
			t.Fatal(err)
		}
		pub, err := ssh.NewPublicKey(held.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Verify([]byte("data"), sig); err != nil {
			t.Fatalf("agent signature does not verify: %v", err)
		}
	})
}
