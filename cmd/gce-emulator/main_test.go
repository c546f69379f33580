//go:build unix

package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// TestADCFileNotThroughPlantedTemp: --adc-file /tmp/adc.json used to write
// the project owner's key through /tmp/adc.json.tmp, a name another local
// user can create first (mode 0666) and read afterwards. The key must reach
// only a 0600 file, and the planted one stay empty.
func TestADCFileNotThroughPlantedTemp(t *testing.T) {
	srv, err := emulator.New(emulator.Config{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "adc.json")
	if err := os.WriteFile(path+".tmp", nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := writeADCFile(srv, path, "http://127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path + ".tmp"); len(b) > 0 {
		t.Errorf("the key went into the planted file (%d bytes)", len(b))
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Errorf("adc file: %v %v", fi, err)
	}
}
