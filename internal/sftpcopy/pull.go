package sftpcopy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/pkg/sftp"

	"github.com/gkessh/gkessh/internal/atomicfile"
)

// maxEntries bounds how many entries a recursive pull plans, so a server
// listing without end cannot exhaust memory.
const maxEntries = 1 << 20

// Pull copies the node's sources to the local dst, as scp NODE:SRC... DST
// does: into dst when it is a directory, else as dst (one source only).
// It fails early, writing nothing, when a source is missing or dst cannot
// take several sources. Every file lands under dst whatever names the
// server lists: names that are not plain file names are refused
// (RefusedNameError) and the rest is copied. A remote file that changes while it is read is copied as read
// and listed in Result.Changed.
func (c *Client) Pull(ctx context.Context, srcs []string, dst string, opts Options) (Result, error) {
	cut := c.abortOn(ctx)
	res, err := c.pull(srcs, dst, opts)
	if cerr := cut(); cerr != nil {
		return res, fmt.Errorf("%s: %w", c.node, cerr)
	}
	return res, err
}

func (c *Client) pull(srcs []string, dst string, opts Options) (Result, error) {
	var res Result
	dfi, err := os.Stat(dst)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, err
	}
	dstDir := dfi != nil && dfi.IsDir()
	if len(srcs) > 1 && !dstDir {
		return res, &fs.PathError{Path: dst, Err: ErrNotDirectory}
	}
	var plan []entry
	var errs, refused []error
	for _, src := range srcs {
		rp := remotePath(src)
		target := dst
		if dstDir {
			name := path.Base(path.Clean(rp))
			switch {
			case name == ".": // the home directory: its contents go into dst
			case plainName(name):
				target = filepath.Join(dst, name)
			default:
				errs = append(errs, c.rerr(rp, errors.New("has no name a local file could take")))
				continue
			}
		}
		p := &remotePlan{c: c}
		err := p.walk(rp, target, opts.Recursive)
		res.Skipped = append(res.Skipped, p.skipped...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		refused = append(refused, p.refused...)
		plan = append(plan, p.plan...)
	}
	if len(errs) > 0 {
		return res, errors.Join(errs...)
	}
	if err := c.execute(plan, localDest{c}, opts, &res); err != nil {
		return res, err
	}
	return res, errors.Join(refused...)
}

// remotePlan lists what pulling a remote tree means, checking every name
// the server lists before it becomes part of a local path.
type remotePlan struct {
	c       *Client
	plan    []entry
	skipped []string
	refused []error
}

func (p *remotePlan) walk(src, target string, recursive bool) error {
	fi, err := p.c.sc.Stat(src)
	if err != nil {
		return p.c.rerr(src, err)
	}
	if fi.IsDir() && !recursive {
		return p.c.rerr(src, ErrIsDirectory)
	}
	if !fi.IsDir() && !fi.Mode().IsRegular() {
		p.skipped = append(p.skipped, p.c.node+":"+quote(src)+": not a regular file")
		return nil
	}
	return p.visit(src, target, fi, 0)
}

func (p *remotePlan) visit(src, dst string, fi fs.FileInfo, depth int) error {
	if len(p.plan) >= maxEntries {
		return p.c.rerr(src, fmt.Errorf("more than %d entries", maxEntries))
	}
	p.plan = append(p.plan, entry{src: src, dst: dst, info: fi})
	if !fi.IsDir() {
		return nil
	}
	if depth >= maxDepth {
		return p.c.rerr(src, fmt.Errorf("more than %d directories deep", maxDepth))
	}
	fis, err := p.c.sc.ReadDir(src)
	if err != nil {
		return p.c.rerr(src, err)
	}
	var refused []string
	for _, cfi := range fis {
		name := cfi.Name()
		if name == "." || name == ".." { // some servers list them
			continue
		}
		if !plainName(name) {
			refused = append(refused, name)
			continue
		}
		rp := path.Join(src, name)
		if cfi.Mode()&fs.ModeSymlink != 0 {
			// Listings are lstat's: follow links to files as scp does.
			t, err := p.c.sc.Stat(rp)
			if err != nil {
				p.skipped = append(p.skipped, p.c.node+":"+quote(rp)+": a dangling symbolic link")
				continue
			}
			if t.IsDir() {
				p.skipped = append(p.skipped, p.c.node+":"+quote(rp)+": a symbolic link to a directory (not followed)")
				continue
			}
			cfi = t
		}
		if !cfi.IsDir() && !cfi.Mode().IsRegular() {
			p.skipped = append(p.skipped, p.c.node+":"+quote(rp)+": not a regular file")
			continue
		}
		if err := p.visit(rp, filepath.Join(dst, name), cfi, depth+1); err != nil {
			return err
		}
	}
	if len(refused) > 0 {
		p.refused = append(p.refused, &RefusedNameError{Node: p.c.node, Dir: src, Names: refused})
	}
	p.plan = append(p.plan, entry{src: src, dst: dst, info: fi, after: true})
	return nil
}

// localDest writes a pull on this machine.
type localDest struct{ c *Client }

func (d localDest) mkdir(p string) error                   { return mkdirLocal(p) }
func (d localDest) finishDir(e entry, preserve bool) error { return finishLocalDir(e, preserve) }
func (d localDest) file(e entry, preserve bool, m *meter) (bool, error) {
	return d.c.getFile(e, preserve, m)
}

// mkdirLocal makes a local directory owner-writable so it can be filled,
// or accepts one that is there.
func mkdirLocal(p string) error {
	err := os.Mkdir(p, 0o755)
	if errors.Is(err, fs.ErrExist) {
		if fi, serr := os.Stat(p); serr == nil && fi.IsDir() {
			return nil
		}
		return &fs.PathError{Op: "mkdir", Path: p, Err: errors.New("exists and is not a directory")}
	}
	return err
}

func finishLocalDir(e entry, preserve bool) error {
	if !preserve {
		return nil
	}
	if err := os.Chmod(e.dst, keptMode(e.info.Mode())); err != nil {
		return err
	}
	return os.Chtimes(e.dst, remoteAtime(e.info), e.info.ModTime())
}

// remoteAtime is a remote file's access time, from its SFTP attributes.
func remoteAtime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*sftp.FileStat); ok {
		return time.Unix(int64(st.Atime), 0)
	}
	return fi.ModTime()
}

// getFile reads one remote file into a temporary file beside the local
// destination and renames it into place; on failure the destination is
// untouched and the temporary file removed. changed reports a remote file
// whose size or time moved while it was read.
func (c *Client) getFile(e entry, preserve bool, m *meter) (changed bool, err error) {
	rf, err := c.sc.Open(e.src)
	if err != nil {
		return false, c.rerr(e.src, err)
	}
	defer rf.Close()
	before, err := rf.Stat()
	if err != nil {
		return false, c.rerr(e.src, err)
	}
	old, err := os.Stat(e.dst)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if old != nil && old.IsDir() {
		return false, &fs.PathError{Path: e.dst, Err: errors.New("is a directory")}
	}
	perm := before.Mode().Perm() // less the local umask, as the file is created
	if old != nil {
		perm = old.Mode().Perm()
	}
	dir, name := filepath.Split(e.dst)
	var tmp string
	var tf *os.File
	for range 3 {
		tmp = filepath.Join(dir, tempName(name, suffix()))
		tf, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err == nil || !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			tf.Close()
			os.Remove(tmp)
		}
	}()
	cw := &countingWriter{w: tf, m: m}
	if _, err := rf.WriteTo(cw); err != nil {
		return false, c.rerr(e.src, err)
	}
	after, err := rf.Stat()
	if err != nil {
		return false, c.rerr(e.src, err)
	}
	changed = cw.n != before.Size() || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime())
	switch {
	case preserve:
		err = tf.Chmod(keptMode(before.Mode()))
	case old != nil: // exact, not less the umask: replacing keeps the mode
		err = tf.Chmod(perm)
	}
	if err != nil {
		return changed, err
	}
	if err := tf.Close(); err != nil {
		return changed, err
	}
	if preserve {
		if err := os.Chtimes(tmp, remoteAtime(before), before.ModTime()); err != nil {
			return changed, err
		}
	}
	if err := atomicfile.Rename(tmp, e.dst); err != nil {
		return changed, err
	}
	m.fileDone()
	return changed, nil
}
