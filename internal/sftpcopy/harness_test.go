package sftpcopy

import (
	"context"
	"crypto/sha256"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/gkessh/gkessh/internal/testkey"
	"github.com/gkessh/gkessh/internal/testnet"
)

// serveSFTP runs an SSH server on loopback whose sftp subsystem is served
// by serve, and returns an open Client on it, as for a copy to one node.
// Everything stops with the test.
func serveSFTP(t testing.TB, serve func(io.ReadWriteCloser)) *Client {
	t.Helper()
	return serveSFTPInFlight(t, serve, InFlight(1))
}

// serveSFTPInFlight is serveSFTP with inFlight requests per file.
func serveSFTPInFlight(t testing.TB, serve func(io.ReadWriteCloser), inFlight int) *Client {
	t.Helper()
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(testkey.Signer(t))
	addr := testnet.Serve(t, func(c net.Conn) {
		defer c.Close()
		sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
		if err != nil {
			return
		}
		defer sc.Close()
		go ssh.DiscardRequests(reqs)
		var wg sync.WaitGroup
		defer wg.Wait()
		for nc := range chans {
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer ch.Close()
				for req := range creqs {
					ok := req.Type == "subsystem" && string(req.Payload[4:]) == "sftp"
					req.Reply(ok, nil)
					if ok {
						go ssh.DiscardRequests(creqs)
						serve(ch)
						return
					}
				}
			}()
		}
	})
	conn, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "t", HostKeyCallback: ssh.InsecureIgnoreHostKey()}) // a test server of our own
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c, err := Open(context.Background(), conn, "node-1", inFlight)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// osServer serves dir with pkg/sftp's server, which serves the local file
// system as OpenSSH's sftp-server does.
func osServer(dir string) func(io.ReadWriteCloser) {
	return func(rw io.ReadWriteCloser) {
		s, err := sftp.NewServer(rw, sftp.WithServerWorkingDirectory(dir))
		if err != nil {
			return
		}
		s.Serve()
		s.Close()
	}
}

// dirHandlers serve root through pkg/sftp's request server, with hooks a
// test sets to inject faults; list, when set, replaces every directory
// listing.
type dirHandlers struct {
	root    string
	onWrite func(off int64, p []byte) error // before each write
	onRead  func(off int64) error           // before each read
	list    []os.FileInfo
	vfs     *sftp.StatVFS
}

func (h *dirHandlers) serve(rw io.ReadWriteCloser) {
	s := sftp.NewRequestServer(rw, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h})
	s.Serve()
	s.Close()
}

func (h *dirHandlers) path(r *sftp.Request) string { return filepath.Join(h.root, r.Filepath) }

type hookedFile struct {
	*os.File
	h *dirHandlers
}

func (f hookedFile) WriteAt(p []byte, off int64) (int, error) {
	if f.h.onWrite != nil {
		if err := f.h.onWrite(off, p); err != nil {
			return 0, err
		}
	}
	return f.File.WriteAt(p, off)
}

func (f hookedFile) ReadAt(p []byte, off int64) (int, error) {
	if f.h.onRead != nil {
		if err := f.h.onRead(off); err != nil {
			return 0, err
		}
	}
	return f.File.ReadAt(p, off)
}

func (h *dirHandlers) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	f, err := os.Open(h.path(r))
	return hookedFile{f, h}, err
}

func (h *dirHandlers) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	fl := r.Pflags()
	flags := os.O_WRONLY
	if fl.Creat {
		flags |= os.O_CREATE
	}
	if fl.Excl {
		flags |= os.O_EXCL
	}
	if fl.Trunc {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(h.path(r), flags, 0o644)
	return hookedFile{f, h}, err
}

func (h *dirHandlers) Filecmd(r *sftp.Request) error {
	p := h.path(r)
	switch r.Method {
	case "Setstat":
		a, fl := r.Attributes(), r.AttrFlags()
		if fl.Permissions {
			if err := os.Chmod(p, a.FileMode().Perm()); err != nil {
				return err
			}
		}
		if fl.Acmodtime {
			return os.Chtimes(p, time.Unix(int64(a.Atime), 0), time.Unix(int64(a.Mtime), 0))
		}
		return nil
	case "Rename":
		return os.Rename(p, filepath.Join(h.root, r.Target))
	case "Remove":
		return os.Remove(p)
	case "Mkdir":
		return os.Mkdir(p, 0o755)
	case "Rmdir":
		return os.Remove(p)
	}
	return sftp.ErrSSHFxOpUnsupported
}

func (h *dirHandlers) PosixRename(r *sftp.Request) error {
	return os.Rename(h.path(r), filepath.Join(h.root, r.Target))
}

func (h *dirHandlers) StatVFS(r *sftp.Request) (*sftp.StatVFS, error) {
	if h.vfs == nil {
		return nil, syscall.ENOTSUP
	}
	return h.vfs, nil
}

type listerAt []os.FileInfo

func (l listerAt) ListAt(dst []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[off:])
	if n < len(dst) {
		return n, io.EOF
	}
	return n, nil
}

func (h *dirHandlers) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	p := h.path(r)
	switch r.Method {
	case "List":
		if h.list != nil {
			return listerAt(h.list), nil
		}
		des, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var fis listerAt
		for _, de := range des {
			fi, err := de.Info()
			if err != nil {
				return nil, err
			}
			fis = append(fis, fi)
		}
		return fis, nil
	case "Stat", "Lstat":
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		return listerAt{fi}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// fakeInfo is a directory entry as a hostile server may list it.
type fakeInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (f fakeInfo) Name() string       { return f.name }
func (f fakeInfo) Size() int64        { return f.size }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Unix(1e9, 0) }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return nil }

// writeFile writes n pseudo-random bytes (from seed) to p.
func writeFile(t testing.TB, p string, n int, seed byte) {
	t.Helper()
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tree maps every regular file under dir (slash paths) to its sha256.
func tree(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	m := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		m[filepath.ToSlash(rel)] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// names lists the entries of dir, hidden ones included.
func names(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

func noTemps(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err == nil && strings.Contains(path.Base(filepath.ToSlash(p)), ".gkessh-") {
				t.Errorf("temporary file left: %s", p)
			}
			return nil
		})
	}
}
