//go:build unix

package keys

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKeyFileFIFO: a FIFO given as the key, or found as its .pub, is
// refused at once; opening it would block until a writer came, and SIGTERM
// would not stop gkessh meanwhile.
func TestKeyFileFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "key")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	withFIFOPub := filepath.Join(dir, "pair")
	if _, err := LoadOrCreate(withFIFOPub); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(withFIFOPub + ".pub"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(withFIFOPub+".pub", 0o600); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"LoadOrCreate":            func() error { _, err := LoadOrCreate(fifo); return err },
		"Load":                    func() error { _, err := Load(fifo); return err },
		"PublicKey":               func() error { _, err := PublicKey(fifo); return err },
		"PublicKey, FIFO .pub":    func() error { _, err := PublicKey(withFIFOPub); return err },
		"LoadOrCreate, FIFO .pub": func() error { _, err := LoadOrCreate(withFIFOPub); return err },
	}
	for name, call := range calls {
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s: %v, want a refusal of the FIFO", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s blocks on the FIFO", name) // the goroutine stays blocked: the process ends anyway
		}
	}
}
