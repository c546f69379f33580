package testkey

import (
	"bytes"
	"os"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestWritePair: the files are a matching pair that ssh reads back, the
// private one readable by its owner alone; two pairs differ.
func TestWritePair(t *testing.T) {
	path, pub := WritePair(t, t.TempDir())
	priv, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(signer.PublicKey().Marshal(), pub.Marshal()) {
		t.Error("the private key file does not match the public key returned")
	}
	line, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	filePub, _, _, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil || !bytes.Equal(filePub.Marshal(), pub.Marshal()) {
		t.Errorf("%s.pub: %q (%v), want the public key", path, line, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key file mode: %v %v, want 0600", fi.Mode(), err)
	}
	if _, other := WritePair(t, t.TempDir()); bytes.Equal(other.Marshal(), pub.Marshal()) {
		t.Error("two pairs are the same key")
	}
}
