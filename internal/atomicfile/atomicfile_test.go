package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestUserFile: ~/.ssh/config and known_hosts are written as ssh's own
// files: a symlink is written through, the mode is kept, a read-only
// file and a dangling link are refused and left alone, a new file is 0600
// and no temporary file stays behind.
func TestUserFile(t *testing.T) {
	dir := t.TempDir()
	user := Options{KeepMode: true, FollowSymlink: true}

	target := filepath.Join(dir, "dotfiles", "ssh_config")
	os.MkdirAll(filepath.Dir(target), 0o700)
	if err := os.WriteFile(target, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config")
	if err := os.Symlink(filepath.Join("dotfiles", "ssh_config"), link); err != nil {
		t.Skipf("symlink: %v", err)
	}
	if err := WriteFile(link, []byte("new\n"), user); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if got := read(t, target); got != "new\n" {
		t.Errorf("target holds %q", got)
	}
	if fi, _ := os.Stat(target); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o640 {
		t.Errorf("target mode %v", fi.Mode())
	}

	ro := filepath.Join(dir, "ro")
	if err := os.WriteFile(ro, []byte("mine\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	var roErr *ReadOnlyError
	if err := WriteFile(ro, []byte("x"), user); !errors.As(err, &roErr) {
		t.Errorf("read-only file: %v, want a *ReadOnlyError", err)
	}
	if got := read(t, ro); got != "mine\n" {
		t.Errorf("read-only file now %q", got)
	}

	dangling := filepath.Join(dir, "dangling")
	os.Symlink("nowhere/at-all", dangling)
	if err := WriteFile(dangling, []byte("x"), user); err == nil {
		t.Error("dangling link written")
	}
	if fi, err := os.Lstat(dangling); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("dangling link replaced: %v", err)
	}

	fresh := filepath.Join(dir, "new", "known")
	if err := WriteFile(fresh, []byte("x"), user); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(fresh); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v", fi.Mode())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", ".*.tmp*")); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

// TestStateFile: without options the file is owner-only whatever was there,
// a symlink in its place is replaced rather than written through, and a
// file another user planted at a predictable temporary name is not used.
func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "cache.json")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	planted := p + ".tmp"
	if err := os.WriteFile(planted, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new"), Options{}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, p); got != "new" {
		t.Errorf("file holds %q", got)
	}
	if fi, _ := os.Stat(p); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode())
	}
	if got := read(t, planted); got != "" {
		t.Errorf("the planted temporary file got %q", got)
	}

	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln := filepath.Join(dir, "ln")
	if err := os.Symlink(other, ln); err != nil {
		t.Skipf("symlink: %v", err)
	}
	if err := WriteFile(ln, []byte("mine"), Options{}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, other); got != "theirs" {
		t.Errorf("written through a symlink: %q", got)
	}
}

// TestNoReplace: a key file is created once; a second writer gets
// fs.ErrExist and the first file stays; the mode is the one asked for.
func TestNoReplace(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ssh", "id")
	if err := WriteFile(p, []byte("first"), Options{Perm: 0o600, NoReplace: true}); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(p, []byte("second"), Options{Perm: 0o600, NoReplace: true})
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("second write: %v, want fs.ErrExist", err)
	}
	if got := read(t, p); got != "first" {
		t.Errorf("file holds %q", got)
	}
	pub := p + ".pub"
	if err := WriteFile(pub, []byte("pub"), Options{Perm: 0o644, NoReplace: true}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(pub); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o644 {
		t.Errorf(".pub mode %v", fi.Mode())
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

// TestRetry: a rename refused for a moment is tried again with growing
// waits until it works; a lasting refusal gives up after about retryFor;
// any other error is returned at once.
func TestRetry(t *testing.T) {
	busy := errors.New("sharing violation")
	isBusy := func(err error) bool { return errors.Is(err, busy) }
	tests := []struct {
		name     string
		failures int // how many times op fails before it works; -1: always
		err      error
		wantErr  error
		minCalls int
		maxCalls int
	}{
		{"works at once", 0, nil, nil, 1, 1},
		{"busy three times", 3, busy, nil, 4, 4},
		{"busy for good", -1, busy, busy, 8, 2001},
		{"other error", -1, fs.ErrPermission, fs.ErrPermission, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			var slept, last time.Duration
			err := retryWith(func() error {
				calls++
				if tt.failures < 0 || calls <= tt.failures {
					return tt.err
				}
				return nil
			}, isBusy, func(d time.Duration) {
				if d < last {
					t.Errorf("wait %v after %v: waits shrink", d, last)
				}
				last = d
				slept += d
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("err %v, want %v", err, tt.wantErr)
			}
			if calls < tt.minCalls || calls > tt.maxCalls {
				t.Errorf("%d calls, want %d..%d", calls, tt.minCalls, tt.maxCalls)
			}
			if slept > retryFor {
				t.Errorf("waited %v, over %v", slept, retryFor)
			}
			if tt.failures < 0 && tt.err == busy && slept < retryFor/4 {
				t.Errorf("gave up after %v", slept)
			}
		})
	}
}
