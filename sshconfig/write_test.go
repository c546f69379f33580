package sshconfig

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// A symlinked config (a dotfiles checkout) is written through: the
	// link stays, its target changes and keeps its mode.
	target := filepath.Join(dir, "dotfiles", "ssh_config")
	os.MkdirAll(filepath.Dir(target), 0o700)
	if err := os.WriteFile(target, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config")
	if err := os.Symlink(filepath.Join("dotfiles", "ssh_config"), link); err != nil {
		t.Skipf("symlink: %v", err)
	}
	if err := WriteFile(link, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if got := read(target); got != "new\n" {
		t.Errorf("target holds %q", got)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o640 {
		t.Errorf("target mode %v", fi.Mode())
	}

	// A read-only file is refused and left alone.
	ro := filepath.Join(dir, "ro")
	if err := os.WriteFile(ro, []byte("mine\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	var roErr *ReadOnlyError
	if err := WriteFile(ro, []byte("x")); !errors.As(err, &roErr) {
		t.Errorf("read-only file: %v, want a *ReadOnlyError", err)
	}
	if got := read(ro); got != "mine\n" {
		t.Errorf("read-only file now %q", got)
	}

	// A dangling link is an error, not a new regular file in its place.
	dangling := filepath.Join(dir, "dangling")
	os.Symlink("nowhere/at-all", dangling)
	if err := WriteFile(dangling, []byte("x")); err == nil {
		t.Error("dangling link written")
	}
	if fi, err := os.Lstat(dangling); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("dangling link replaced: %v", err)
	}

	// A new file is 0600, and no temporary file stays behind.
	fresh := filepath.Join(dir, "new", "known")
	if err := WriteFile(fresh, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v", fi.Mode())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", ".*.tmp*")); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
}
