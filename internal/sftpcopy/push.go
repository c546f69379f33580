package sftpcopy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/pkg/sftp"
)

// ErrIsDirectory is a directory source in a copy that is not recursive.
var ErrIsDirectory = errors.New("is a directory (only a recursive copy takes directories)")

// ErrNotDirectory is a destination that must be a directory, since several
// sources go there, and is not.
var ErrNotDirectory = errors.New("is not a directory (several sources need a directory to go into)")

// ErrNoSpace is a push that failed because the node's file system is full;
// its temporary file was removed.
var ErrNoSpace = errors.New("no space left on the node's file system")

// entry is one thing to copy, found before any byte moves, so a missing
// source fails the copy before anything is written.
type entry struct {
	src, dst string
	info     fs.FileInfo // the source's, symbolic links followed
	// after marks a directory's second visit, once its contents are
	// copied: its mode and times are set then, so a read-only directory
	// can still be filled.
	after bool
}

// maxDepth bounds how deep a recursive copy goes, so a directory that
// contains itself (a server can list anything) ends.
const maxDepth = 256

// Push copies the local sources to dst on the node, as scp SRC... NODE:DST
// does: into dst when it is a directory, else as dst (one source only).
// It fails early, writing nothing, when a source is missing or dst cannot
// take several sources. The remote path is relative to the login's home
// directory unless absolute.
func (c *Client) Push(ctx context.Context, srcs []string, dst string, opts Options) (Result, error) {
	cut := c.abortOn(ctx)
	res, err := c.push(srcs, remotePath(dst), opts)
	if cerr := cut(); cerr != nil {
		return res, fmt.Errorf("%s: %w", c.node, cerr)
	}
	return res, err
}

func (c *Client) push(srcs []string, dst string, opts Options) (Result, error) {
	var res Result
	dfi, err := c.stat(dst)
	if err != nil {
		return res, err
	}
	dstDir := dfi != nil && dfi.IsDir()
	if len(srcs) > 1 && !dstDir {
		return res, c.rerr(dst, ErrNotDirectory)
	}
	var plan []entry
	var errs []error
	for _, src := range srcs {
		target := dst
		if dstDir {
			target = joinRemote(dst, filepath.Base(src))
		}
		es, skipped, err := planLocal(src, target, opts.Recursive)
		res.Skipped = append(res.Skipped, skipped...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		plan = append(plan, es...)
	}
	if len(errs) > 0 {
		return res, errors.Join(errs...)
	}
	return res, c.execute(plan, remoteDest{c}, opts, &res)
}

// dest is where a copy writes: the node for a push, this machine for a
// pull.
type dest interface {
	mkdir(p string) error
	finishDir(e entry, preserve bool) error
	// file copies one file; changed reports a source that moved while
	// it was read but was kept.
	file(e entry, preserve bool, m *meter) (changed bool, err error)
}

// execute carries out a plan in order, counting into res, and stops at
// the first failure.
func (c *Client) execute(plan []entry, d dest, opts Options, res *Result) error {
	bytes, files := total(plan)
	m := newMeter(opts.Progress, bytes, files)
	defer m.done()
	for _, e := range plan {
		var err error
		switch {
		case e.after:
			err = d.finishDir(e, opts.Preserve)
		case e.info.IsDir():
			err = d.mkdir(e.dst)
		default:
			var changed bool
			changed, err = d.file(e, opts.Preserve, m)
			if err == nil {
				res.Files++
				res.Bytes += e.info.Size()
			}
			if changed {
				res.Changed = append(res.Changed, c.node+":"+quote(e.src))
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// remoteDest writes a push on the node.
type remoteDest struct{ c *Client }

func (d remoteDest) mkdir(p string) error                   { return d.c.mkdir(p) }
func (d remoteDest) finishDir(e entry, preserve bool) error { return d.c.finishDir(e, preserve) }
func (d remoteDest) file(e entry, preserve bool, m *meter) (bool, error) {
	return false, d.c.putFile(e, preserve, m)
}

// total counts a plan's files and bytes.
func total(plan []entry) (int64, int) {
	var n int64
	files := 0
	for _, e := range plan {
		if !e.after && !e.info.IsDir() {
			n += e.info.Size()
			files++
		}
	}
	return n, files
}

// planLocal lists what copying the local src to the remote target means.
// Symbolic links are followed to files; links to directories, and devices,
// sockets and pipes, are skipped, with why.
func planLocal(src, target string, recursive bool) ([]entry, []string, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() && !recursive {
		return nil, nil, &fs.PathError{Path: src, Err: ErrIsDirectory}
	}
	if !fi.IsDir() && !fi.Mode().IsRegular() {
		return nil, []string{src + ": not a regular file"}, nil
	}
	var plan []entry
	var skipped []string
	var walk func(src, dst string, fi fs.FileInfo, depth int) error
	walk = func(src, dst string, fi fs.FileInfo, depth int) error {
		plan = append(plan, entry{src: src, dst: dst, info: fi})
		if !fi.IsDir() {
			return nil
		}
		if depth >= maxDepth {
			return fmt.Errorf("%s: more than %d directories deep", src, maxDepth)
		}
		des, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, de := range des {
			p := filepath.Join(src, de.Name())
			cfi, err := os.Stat(p)
			if err != nil {
				return err
			}
			switch {
			case de.Type()&fs.ModeSymlink != 0 && cfi.IsDir():
				skipped = append(skipped, quote(p)+": a symbolic link to a directory (not followed)")
			case !cfi.IsDir() && !cfi.Mode().IsRegular():
				skipped = append(skipped, quote(p)+": not a regular file")
			default:
				if err := walk(p, path.Join(dst, de.Name()), cfi, depth+1); err != nil {
					return err
				}
			}
		}
		plan = append(plan, entry{src: src, dst: dst, info: fi, after: true})
		return nil
	}
	if err := walk(src, target, fi, 0); err != nil {
		return nil, skipped, err
	}
	return plan, skipped, nil
}

// mkdir makes a remote directory, or accepts one that is there.
func (c *Client) mkdir(p string) error {
	fi, err := c.stat(p)
	if err != nil {
		return err
	}
	if fi != nil {
		if !fi.IsDir() {
			return c.rerr(p, fmt.Errorf("exists and is not a directory"))
		}
		return nil
	}
	if err := c.sc.Mkdir(p); err != nil {
		return c.rerr(p, err)
	}
	return nil
}

// finishDir sets a copied directory's mode and times, once its contents
// are in, when they are preserved.
func (c *Client) finishDir(e entry, preserve bool) error {
	if !preserve {
		return nil
	}
	if err := c.sc.Chmod(e.dst, keptMode(e.info.Mode())); err != nil {
		return c.rerr(e.dst, err)
	}
	if err := c.sc.Chtimes(e.dst, atime(e.info), e.info.ModTime()); err != nil {
		return c.rerr(e.dst, err)
	}
	return nil
}

// keptMode is the part of a mode that -p keeps: permissions with setuid,
// setgid and sticky, as scp keeps.
func keptMode(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// suffix is the random part of a temporary name.
func suffix() string { return strconv.FormatUint(rand.Uint64(), 36) }

// putFile writes one local file to the node under a temporary name in the
// destination's directory and renames it into place. Whatever goes wrong,
// the destination keeps its old content (or stays absent) and the
// temporary file is removed, unless the connection itself is gone.
func (c *Client) putFile(e entry, preserve bool, m *meter) (err error) {
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return err
	}
	old, err := c.stat(e.dst)
	if err != nil {
		return err
	}
	if old != nil && old.IsDir() {
		return c.rerr(e.dst, errors.New("is a directory"))
	}
	dir, name := path.Split(e.dst)
	var tmp string
	var tf *sftp.File
	for range 3 { // a clash of random names is not worth more tries
		tmp = dir + tempName(name, suffix())
		tf, err = c.sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if err == nil || !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return c.rerr(e.dst, fmt.Errorf("create a temporary file beside it: %w", err))
	}
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				tf.Close()
			}
			if rerr := c.sc.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = fmt.Errorf("%w; the part that arrived may remain as %s:%s", err, c.node, quote(tmp))
			}
		}
	}()
	cr := &countingReader{r: f, m: m}
	if _, err := tf.ReadFromWithConcurrency(cr, c.inFlight); err != nil {
		return c.rerr(e.dst, c.whyWriteFailed(dir, err))
	}
	after, err := f.Stat()
	if err != nil {
		return err
	}
	if cr.n != before.Size() || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		return &ChangedError{Path: e.src}
	}
	var mode fs.FileMode
	switch {
	case preserve:
		mode = keptMode(before.Mode())
	case old != nil: // replacing a file keeps its mode, as writing into it would
		mode = keptMode(old.Mode())
	default:
		// A new file gets the source's permissions less the node's umask,
		// as scp gives it; the server applied its umask to the
		// temporary file's default 0666, which tells it.
		tfi, err := tf.Stat()
		if err != nil {
			return c.rerr(e.dst, err)
		}
		mode = before.Mode().Perm() & umaskAllows(tfi.Mode().Perm())
	}
	if err := tf.Chmod(mode); err != nil {
		return c.rerr(e.dst, err)
	}
	closed = true
	if err := tf.Close(); err != nil {
		return c.rerr(e.dst, c.whyWriteFailed(dir, err))
	}
	if preserve {
		if err := c.sc.Chtimes(tmp, atime(before), before.ModTime()); err != nil {
			return c.rerr(e.dst, err)
		}
	}
	if err := c.rename(tmp, e.dst); err != nil {
		return c.rerr(e.dst, err)
	}
	m.fileDone()
	return nil
}

// umaskAllows turns the mode a server gave a file created as 0666 into the
// permissions its umask lets through, execute bits following read bits
// (umasks 022, 002, 077 and 027 all do).
func umaskAllows(created fs.FileMode) fs.FileMode {
	return created | (created&0o444)>>2
}

// whyWriteFailed tells a full disk apart from other write failures, which
// SFTP reports alike (SSH_FX_FAILURE), when the server can say how much
// space is left (statvfs@openssh.com).
func (c *Client) whyWriteFailed(dir string, err error) error {
	if _, ok := c.sc.HasExtension("statvfs@openssh.com"); !ok {
		return err
	}
	if dir == "" {
		dir = "."
	}
	if vfs, verr := c.sc.StatVFS(dir); verr == nil && vfs.Frsize*vfs.Bavail < 1<<20 {
		return fmt.Errorf("%w (%v)", ErrNoSpace, err)
	}
	return err
}

// rename moves the finished temporary file onto the destination,
// atomically where the server offers POSIX rename.
func (c *Client) rename(from, to string) error {
	if c.posixRename {
		return c.sc.PosixRename(from, to)
	}
	// Plain SFTP rename refuses an existing target: remove it first. A
	// reader may then find no file for a moment, but never half of one.
	err := c.sc.Rename(from, to)
	if err != nil {
		if fi, serr := c.stat(to); serr == nil && fi != nil && !fi.IsDir() {
			if rerr := c.sc.Remove(to); rerr == nil {
				err = c.sc.Rename(from, to)
			}
		}
	}
	return err
}
