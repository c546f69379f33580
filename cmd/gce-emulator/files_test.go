//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gkessh/gkessh/emulator"
)

// TestSecretFilesRefuseOthersPaths: --adc-file and --env-file (and the
// emulator's own token and header files) refuse a path another local user
// could have prepared: a symlink, someone else's
// file, a directory others may write that is not sticky. The prepared
// file and the link's target stay as they were.
func TestSecretFilesRefuseOthersPaths(t *testing.T) {
	srv, err := emulator.New(emulator.Config{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const planted = "planted by another user\n"
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string) string // returns the path to write
		wantErr string                                // "" for a write that must succeed
		root    bool                                  // needs root (to chown to another uid)
	}{
		{"new file", func(t *testing.T, dir string) string { return filepath.Join(dir, "adc.json") }, "", false},
		{"own file replaced", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "adc.json")
			mustWrite(t, p, "old", 0o644)
			return p
		}, "", false},
		{"symlink", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "adc.json")
			mustWrite(t, filepath.Join(dir, "target"), planted, 0o666)
			if err := os.Symlink(filepath.Join(dir, "target"), p); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is a symlink", false},
		{"someone else's file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "adc.json")
			mustWrite(t, p, planted, 0o666)
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return p
		}, "belongs to uid 65534", true},
		{"directory others may write", func(t *testing.T, dir string) string {
			shared := filepath.Join(dir, "shared")
			if err := os.Mkdir(shared, 0o777); err != nil {
				t.Fatal(err)
			}
			os.Chmod(shared, 0o777) // whatever the umask
			return filepath.Join(shared, "adc.json")
		}, "can be written by other users", false},
		{"sticky shared directory, new name", func(t *testing.T, dir string) string {
			shared := filepath.Join(dir, "tmp")
			if err := os.Mkdir(shared, 0o777); err != nil {
				t.Fatal(err)
			}
			os.Chmod(shared, 0o777|os.ModeSticky)
			return filepath.Join(shared, "adc.json")
		}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root, to make a file another user's")
			}
			dir := t.TempDir()
			path := tt.prepare(t, dir)
			before := snapshot(t, dir)
			err := writeADCFile(srv, path, "http://127.0.0.1:1")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				fi, err := os.Lstat(path)
				if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 || !ownedByMe(fi) {
					t.Errorf("written file: %v, %v; want a regular 0600 file of ours", fi, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("a refused write changed the directory:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func mustWrite(t *testing.T, path, data string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
}

// snapshot lists the files under dir with their modes and contents.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		b.WriteString(p + " " + fi.Mode().String())
		if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			b.WriteString(" " + string(data))
		}
		b.WriteString("; ")
		return nil
	})
	return b.String()
}
