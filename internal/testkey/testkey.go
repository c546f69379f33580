// Package testkey makes throwaway Ed25519 SSH keys for tests: as a signer,
// a public key, the private key itself, a key file's bytes, or a key pair
// written to disk.
package testkey

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Key returns a new private key, for tests that need the key itself (an
// agent's keyring, a key file in a chosen format).
func Key(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return priv
}

// Signer returns the signer of a new key pair.
func Signer(tb testing.TB) ssh.Signer {
	tb.Helper()
	s, err := ssh.NewSignerFromSigner(Key(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Public returns the public half of a new key pair.
func Public(tb testing.TB) ssh.PublicKey {
	tb.Helper()
	return Signer(tb).PublicKey()
}

// PEM is key as an unencrypted OpenSSH private key file, as ssh-keygen
// writes it.
func PEM(tb testing.TB, key crypto.Signer) []byte {
	tb.Helper()
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

// WritePair writes a new key pair as ssh-keygen does, dir/id_ed25519
// (mode 0600) and dir/id_ed25519.pub, and returns the private key file's
// path and the public key.
func WritePair(tb testing.TB, dir string) (string, ssh.PublicKey) {
	tb.Helper()
	key := Key(tb)
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(path, PEM(tb, key), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(pub), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path, pub
}

// Fixed returns the public key made from 32 bytes of seed: the same key in
// every run, for tests that want stable metadata lines and fingerprints,
// or several keys that differ.
func Fixed(tb testing.TB, seed byte) ssh.PublicKey {
	tb.Helper()
	pub, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)).Public())
	if err != nil {
		tb.Fatal(err)
	}
	return pub
}
