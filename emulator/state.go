//go:build unix

package emulator

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// A node's identity must survive a restart as a pair: the same instance id
// (gkessh pins host keys under compute.ID) with the same host keys. In a
// state directory the user names (Config.Dir) ids repeat from run to run,
// so the host keys are kept there; in a temporary one the keys are new,
// so each run gets ids of its own.

// nodeHostKeys returns node's host keys: fresh in a temporary state
// directory, else the ones an earlier run stored under
// DIR/nodes/NAME/hostkeys, created and stored on first use.
func (s *Server) nodeHostKeys(node string) ([]hostKey, error) {
	if s.tempDir {
		return newHostKeys()
	}
	dir := filepath.Join(s.dir, "nodes", node, "hostkeys")
	keys, err := loadHostKeys(dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return keys, err
	}
	if keys, err = newHostKeys(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	for i, k := range keys {
		block, err := ssh.MarshalPrivateKey(k.priv, "")
		if err != nil {
			return nil, fmt.Errorf("emulator: encode host key: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, hostKeyFiles[i]), pem.EncodeToMemory(block), 0o600); err != nil {
			return nil, fmt.Errorf("emulator: %w", err)
		}
	}
	return keys, nil
}

// hostKeyFiles name the stored keys, in newHostKeys' order.
var hostKeyFiles = []string{"ssh_host_ed25519_key", "ssh_host_ecdsa_key"}

func loadHostKeys(dir string) ([]hostKey, error) {
	var keys []hostKey
	for _, name := range hostKeyFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		raw, err := ssh.ParseRawPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("emulator: host key %s: %w", filepath.Join(dir, name), err)
		}
		if p, ok := raw.(*ed25519.PrivateKey); ok {
			raw = *p
		}
		priv, ok := raw.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("emulator: host key %s: not a signing key", filepath.Join(dir, name))
		}
		signer, err := ssh.NewSignerFromSigner(priv)
		if err != nil {
			return nil, fmt.Errorf("emulator: host key %s: %w", filepath.Join(dir, name), err)
		}
		keys = append(keys, hostKey{priv: priv, signer: signer})
	}
	return keys, nil
}

// runIDBase is where a run in a temporary state directory starts its ids:
// random, in steps of a billion, so two runs never share an instance id.
func runIDBase() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return 1000000000000000000 + binary.BigEndian.Uint64(b[:])%(1<<32)*1000000000
}
