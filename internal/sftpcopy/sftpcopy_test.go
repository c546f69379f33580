package sftpcopy

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pkg/sftp"
)

// A tree both ways: sources and destinations as scp takes them, checked by
// the sha256 of every file that arrives.
func TestPushPull(t *testing.T) {
	type want struct {
		files map[string]string // destination path -> source path, relative
		err   error
	}
	tests := []struct {
		name      string
		srcs      []string
		dst       string
		recursive bool
		pre       []string // destination directories made first
		want      want
	}{
		{name: "file to new name", srcs: []string{"a"}, dst: "x", want: want{files: map[string]string{"x": "a"}}},
		{name: "file into directory", srcs: []string{"a"}, dst: "d", pre: []string{"d"}, want: want{files: map[string]string{"d/a": "a"}}},
		{name: "files into directory", srcs: []string{"a", "big"}, dst: "d", pre: []string{"d"},
			want: want{files: map[string]string{"d/a": "a", "d/big": "big"}}},
		{name: "directory to new name", srcs: []string{"dir"}, dst: "n", recursive: true,
			want: want{files: map[string]string{"n/b": "dir/b", "n/sub/c": "dir/sub/c", "n/empty": ""}}},
		{name: "directory into directory", srcs: []string{"dir"}, dst: "d", pre: []string{"d"}, recursive: true,
			want: want{files: map[string]string{"d/dir/b": "dir/b", "d/dir/sub/c": "dir/sub/c", "d/dir/empty": ""}}},
		{name: "directory without recursion", srcs: []string{"dir"}, dst: "d", pre: []string{"d"}, want: want{err: ErrIsDirectory}},
		{name: "missing source", srcs: []string{"a", "nope"}, dst: "d", pre: []string{"d"}, want: want{err: fs.ErrNotExist}},
		{name: "several into a file", srcs: []string{"a", "big"}, dst: "x", want: want{err: ErrNotDirectory}},
	}
	for _, dir := range []string{"push", "pull"} {
		for _, tt := range tests {
			t.Run(dir+"/"+tt.name, func(t *testing.T) {
				src, dst := t.TempDir(), t.TempDir()
				writeFile(t, filepath.Join(src, "a"), 1000, 1)
				writeFile(t, filepath.Join(src, "big"), 5<<20+17, 2)
				writeFile(t, filepath.Join(src, "dir", "b"), 70000, 3)
				writeFile(t, filepath.Join(src, "dir", "sub", "c"), 0, 4)
				os.Mkdir(filepath.Join(src, "dir", "empty"), 0o755)
				for _, p := range tt.pre {
					os.Mkdir(filepath.Join(dst, p), 0o755)
				}
				var c *Client
				var err error
				opts := Options{Recursive: tt.recursive}
				if dir == "push" {
					c = serveSFTP(t, osServer(dst))
					var srcs []string
					for _, s := range tt.srcs {
						srcs = append(srcs, filepath.Join(src, s))
					}
					_, err = c.Push(context.Background(), srcs, tt.dst, opts)
				} else {
					c = serveSFTP(t, osServer(src))
					_, err = c.Pull(context.Background(), tt.srcs, filepath.Join(dst, tt.dst), opts)
				}
				if tt.want.err != nil {
					if !errors.Is(err, tt.want.err) {
						t.Fatalf("err = %v, want %v", err, tt.want.err)
					}
					if got := tree(t, dst); len(got) != 0 {
						t.Errorf("a failed copy wrote %v", slices.Collect(maps.Keys(got)))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				got, srcTree := tree(t, dst), tree(t, src)
				for d, s := range tt.want.files {
					if s == "" { // an empty directory
						if fi, err := os.Stat(filepath.Join(dst, d)); err != nil || !fi.IsDir() {
							t.Errorf("%s: not a directory (%v)", d, err)
						}
						continue
					}
					if got[d] != srcTree[s] {
						t.Errorf("%s: not a copy of %s", d, s)
					}
					delete(got, d)
				}
				if len(got) != 0 {
					t.Errorf("unexpected files: %v", slices.Collect(maps.Keys(got)))
				}
				noTemps(t, src, dst)
			})
		}
	}
}

func TestMissingRemoteNamesNodeAndPath(t *testing.T) {
	c := serveSFTP(t, osServer(t.TempDir()))
	_, err := c.Pull(context.Background(), []string{"/no/such/file"}, t.TempDir(), Options{})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "node-1:/no/such/file") {
		t.Errorf("err = %v, want not-exist naming node-1:/no/such/file", err)
	}
	_, err = c.Push(context.Background(), []string{filepath.Join(t.TempDir(), "missing")}, "x", Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("push of a missing local file: err = %v", err)
	}
}

// A hostile server lists names that would land outside the destination
// or print as terminal controls: nothing is written outside it, the plain
// names are copied, and the error lists the refused ones quoted.
// (pkg/sftp's client already keeps only the last element of a listed
// name, so "../x" arrives as "x" and "/" never does.)
func TestPullHostileNames(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "secret"), 10, 2)
	secret := tree(t, root)
	hostile := []string{"../secret", "/etc/passwd", "a/b", "..", ".", "x\x1b[31m", "tab\there", "nl\n", `c:\x`, "bad\xffutf8", "\u202eexe.txt", ""}
	h := &hostileServer{dirs: map[string]bool{"/d": true, "/d/up": true}}
	for _, n := range hostile {
		h.list = append(h.list, fakeInfo{name: n, size: 10, mode: 0o644})
	}
	h.list = append(h.list, fakeInfo{name: "../up", mode: fs.ModeDir | 0o755})
	c := serveSFTP(t, h.serve)
	dest := filepath.Join(root, "dest", "in")
	os.MkdirAll(dest, 0o755)
	_, err := c.Pull(context.Background(), []string{"/d"}, dest, Options{Recursive: true})
	var re *RefusedNameError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a RefusedNameError", err)
	}
	for _, n := range []string{"x\x1b[31m", "tab\there", "nl\n", `c:\x`, "bad\xffutf8", "\u202eexe.txt"} {
		if !slices.Contains(re.Names, n) {
			t.Errorf("%q not refused (refused %q)", n, re.Names)
		}
	}
	if strings.ContainsAny(err.Error(), "\x1b\n\t\u202e") {
		t.Errorf("error prints control characters: %q", err)
	}
	got := tree(t, root)
	if got["secret"] != secret["secret"] {
		t.Error("secret changed")
	}
	delete(got, "secret")
	for p := range got {
		rel, ok := strings.CutPrefix(p, "dest/in/d/")
		if !ok || strings.ContainsFunc(strings.TrimPrefix(rel, "up/"), func(r rune) bool {
			return r < 0x20 || r == 0x7f || r == '\\' || r == '/' || r == 0x202e || r == utf8.RuneError
		}) {
			t.Errorf("wrote %q", p)
		}
	}
	if _, ok := got["dest/in/d/secret"]; !ok {
		t.Errorf("the plain name was not copied: %v", slices.Sorted(maps.Keys(got)))
	}
}

// hostileServer lists list in every directory of dirs and serves every
// other path as a 10-byte file.
type hostileServer struct {
	dirs map[string]bool
	list []os.FileInfo
}

func (h *hostileServer) serve(rw io.ReadWriteCloser) {
	s := sftp.NewRequestServer(rw, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h})
	s.Serve()
	s.Close()
}

func (h *hostileServer) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	return strings.NewReader("0123456789"), nil
}

func (h *hostileServer) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	return nil, sftp.ErrSSHFxPermissionDenied
}

func (h *hostileServer) Filecmd(r *sftp.Request) error { return sftp.ErrSSHFxPermissionDenied }

func (h *hostileServer) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	if r.Method == "List" {
		if h.dirs[r.Filepath] && r.Filepath == "/d" {
			return listerAt(h.list), nil
		}
		return listerAt{}, nil
	}
	if h.dirs[r.Filepath] {
		return listerAt{fakeInfo{name: path.Base(r.Filepath), mode: fs.ModeDir | 0o755}}, nil
	}
	return listerAt{fakeInfo{name: path.Base(r.Filepath), size: 10, mode: 0o644}}, nil
}

// A full disk fails the push, removes the temporary file and leaves the
// old destination as it was.
func TestPushFullDisk(t *testing.T) {
	src, remote := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "f"), 3<<20, 1)
	writeFile(t, filepath.Join(remote, "f"), 100, 2)
	before := tree(t, remote)
	h := &dirHandlers{root: remote, vfs: &sftp.StatVFS{Bsize: 4096, Frsize: 4096, Blocks: 1000}}
	h.onWrite = func(off int64, p []byte) error {
		if off >= 1<<20 {
			return syscall.ENOSPC
		}
		return nil
	}
	c := serveSFTP(t, h.serve)
	_, err := c.Push(context.Background(), []string{filepath.Join(src, "f")}, "f", Options{})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("err = %v, want ErrNoSpace", err)
	}
	if !maps.Equal(tree(t, remote), before) {
		t.Error("the destination changed")
	}
	noTemps(t, remote)
}

// A local file that grows while it is pushed is not installed.
func TestPushLocalChanged(t *testing.T) {
	src, remote := t.TempDir(), t.TempDir()
	p := filepath.Join(src, "f")
	writeFile(t, p, 2<<20, 1)
	var once sync.Once
	h := &dirHandlers{root: remote, onWrite: func(off int64, b []byte) error {
		once.Do(func() {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err == nil {
				f.Write([]byte("more"))
				f.Close()
			}
		})
		return nil
	}}
	c := serveSFTP(t, h.serve)
	_, err := c.Push(context.Background(), []string{p}, "f", Options{})
	var ce *ChangedError
	if !errors.As(err, &ce) || ce.Path != p {
		t.Fatalf("err = %v, want a ChangedError for %s", err, p)
	}
	if len(names(t, remote)) != 0 {
		t.Errorf("left on the node: %v", names(t, remote))
	}
}

// A pull that fails midway (the connection cut, a read error) leaves no
// file at the destination, and no temporary file either.
func TestPullFailsAtomically(t *testing.T) {
	remote, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(remote, "f"), 3<<20, 1)
	h := &dirHandlers{root: remote, onRead: func(off int64) error {
		if off >= 1<<20 {
			return syscall.EIO
		}
		return nil
	}}
	c := serveSFTP(t, h.serve)
	_, err := c.Pull(context.Background(), []string{"f"}, filepath.Join(dst, "f"), Options{})
	if err == nil || !strings.Contains(err.Error(), "node-1:f") {
		t.Fatalf("err = %v, want one naming node-1:f", err)
	}
	if n := names(t, dst); len(n) != 0 {
		t.Errorf("left behind: %v", n)
	}
}

// Cancelling cuts the transfer: the call returns the context's error and
// the destination never holds part of the file.
func TestPushCancelled(t *testing.T) {
	src, remote := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "f"), 4<<20, 1)
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	var once sync.Once
	h := &dirHandlers{root: remote, onWrite: func(off int64, b []byte) error {
		if off >= 1<<20 {
			once.Do(cancel)
			<-release
		}
		return nil
	}}
	defer close(release)
	c := serveSFTP(t, h.serve)
	_, err := c.Push(ctx, []string{filepath.Join(src, "f")}, "f", Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(remote, "f")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("destination exists after a cut (%v)", err)
	}
}

// Progress ends with everything counted and Done; rate and ETA follow.
func TestProgress(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a"), 3<<20, 1)
	writeFile(t, filepath.Join(src, "b"), 1<<20, 2)
	c := serveSFTP(t, osServer(t.TempDir()))
	var got []Progress
	_, err := c.Push(context.Background(), []string{filepath.Join(src, "a"), filepath.Join(src, "b")}, ".",
		Options{Progress: func(p Progress) { got = append(got, p) }})
	if err != nil {
		t.Fatal(err)
	}
	last := got[len(got)-1]
	if !last.Done || last.Bytes != 4<<20 || last.Total != 4<<20 || last.Files != 2 || last.TotalFiles != 2 {
		t.Errorf("last progress %+v", last)
	}
	for _, p := range got[:len(got)-1] {
		if p.Done || p.Bytes > p.Total {
			t.Errorf("progress before the end: %+v", p)
		}
	}
	p := Progress{Bytes: 25, Total: 100, Elapsed: time.Second}
	if p.Rate() != 25 || p.ETA() != 3*time.Second {
		t.Errorf("rate %v, eta %v", p.Rate(), p.ETA())
	}
	if (Progress{Total: 1}).ETA() != -1 {
		t.Error("ETA with no rate")
	}
}

func TestPlainName(t *testing.T) {
	for _, n := range []string{"a", "a.b", ".hidden", "naïve", "日本", "a b"} {
		if !plainName(n) {
			t.Errorf("%q refused", n)
		}
	}
	for _, n := range []string{"", ".", "..", "a/b", `a\b`, "/x", "\x00", "a\nb", "\x1b[0m", "\u202ex", "\xff"} {
		if plainName(n) {
			t.Errorf("%q accepted", n)
		}
	}
}

// Whatever plainName accepts stays one element inside a directory.
func FuzzPlainName(f *testing.F) {
	for _, s := range []string{"a", "..", "../x", "/abs", "a/b", "x\x1b", "CON", "c:x", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !plainName(name) {
			return
		}
		dir := filepath.Join("base", "dir")
		p := filepath.Join(dir, name)
		if filepath.Dir(p) != dir || filepath.Base(p) != name {
			t.Errorf("%q escapes: %s", name, p)
		}
	})
}

// TestInFlight copies a file each way with as many requests in flight as
// a copy on that many nodes at once keeps, counting the reads and writes
// the server has yet to answer: they stay within the bound (one more:
// pkg/sftp sends a request before a worker is free to wait for its
// answer). How close a copy comes to it depends on how fast the server
// answers, so only the bound is checked.
func TestInFlight(t *testing.T) {
	tests := []struct{ nodes, want int }{{0, 128}, {1, 128}, {2, 64}, {4, 32}, {8, 16}, {32, 16}, {1000, 16}}
	for _, tt := range tests {
		if got := InFlight(tt.nodes); got != tt.want {
			t.Errorf("InFlight(%d) = %d, want %d", tt.nodes, got, tt.want)
		}
	}
	for _, nodes := range []int{1, 32} {
		for _, push := range []bool{true, false} {
			src, dst := t.TempDir(), t.TempDir()
			writeFile(t, filepath.Join(src, "big"), 8<<20, 5)
			served := dst
			if !push {
				served = src
			}
			var peak atomic.Int64
			c := serveSFTPInFlight(t, countInFlight(osServer(served), &peak), InFlight(nodes))
			var err error
			if push {
				_, err = c.Push(context.Background(), []string{filepath.Join(src, "big")}, "big", Options{})
			} else {
				_, err = c.Pull(context.Background(), []string{"big"}, filepath.Join(dst, "big"), Options{})
			}
			if err != nil {
				t.Fatal(err)
			}
			if tree(t, dst)["big"] != tree(t, src)["big"] {
				t.Fatalf("%d nodes, push %v: not a copy", nodes, push)
			}
			max, lim := int(peak.Load()), InFlight(nodes)
			t.Logf("%d nodes, push %v: %d requests in flight at most, bound %d", nodes, push, max, lim)
			if max > lim+1 {
				t.Errorf("%d nodes, push %v: %d requests in flight at most, want %d or fewer", nodes, push, max, lim+1)
			}
		}
	}
}

// countInFlight wraps an SFTP server to track, in peak, the most read and
// write requests it had received and not yet answered. SFTP packets are a
// uint32 length, a type byte and (for these) a uint32 request id.
func countInFlight(serve func(io.ReadWriteCloser), peak *atomic.Int64) func(io.ReadWriteCloser) {
	return func(rw io.ReadWriteCloser) {
		var mu sync.Mutex
		open := map[uint32]bool{}
		in := &packetTap{r: rw, each: func(typ byte, id uint32) {
			if typ == 5 || typ == 6 { // SSH_FXP_READ, SSH_FXP_WRITE
				mu.Lock()
				open[id] = true
				peak.Store(max(peak.Load(), int64(len(open))))
				mu.Unlock()
			}
		}}
		out := &packetTap{each: func(_ byte, id uint32) {
			mu.Lock()
			delete(open, id)
			mu.Unlock()
		}}
		serve(struct {
			io.Reader
			io.Writer
			io.Closer
		}{in, writerFunc(func(p []byte) (int, error) {
			// An answer counts once it is on its way, before the client
			// can send the request that takes its place.
			out.feed(p)
			return rw.Write(p)
		}), rw})
	}
}

// packetTap calls each for every SFTP packet in the bytes it reads from r,
// or is fed.
type packetTap struct {
	r    io.Reader
	buf  []byte
	each func(typ byte, id uint32)
}

func (p *packetTap) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.feed(b[:n])
	return n, err
}

func (p *packetTap) feed(b []byte) {
	p.buf = append(p.buf, b...)
	for len(p.buf) >= 9 {
		n := int(binary.BigEndian.Uint32(p.buf))
		if len(p.buf) < 4+n {
			return
		}
		if n >= 5 {
			p.each(p.buf[4], binary.BigEndian.Uint32(p.buf[5:]))
		}
		p.buf = p.buf[4+n:]
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
