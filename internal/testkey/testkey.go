// Package testkey makes throwaway Ed25519 SSH keys for tests.
package testkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Signer returns the signer of a new key pair.
func Signer(tb testing.TB) ssh.Signer {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ssh.NewSignerFromSigner(priv)
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
