package ssh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/pkg/sftp"
)

// Progress is told the bytes moved so far and the total of a transfer. It is
// never called concurrently for one transfer. It may be nil.
type Progress func(done, total int64)

const (
	// transferWorkers is how many files of a tree move at once; each file
	// also keeps many SFTP requests in flight.
	transferWorkers = 4
	// tmpMarker is in the name of every file being written; it becomes the
	// destination only by a rename once complete.
	tmpMarker = ".e2e-tmp-"
	// openSSHMaxPacket fits OpenSSH sftp-server's 256 KiB message limit
	// (SFTP_MAX_MSG_LENGTH less its 1 KiB allowance for headers); eight
	// times the 32 KiB every server must accept, so fewer round trips.
	openSSHMaxPacket = 256*1024 - 1024
	// modeBits are the mode bits a transfer keeps.
	modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
)

// sftpClient opens the connection's SFTP session on first use.
func (c *Client) sftpClient(ctx context.Context) (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	select {
	case <-c.done:
		return nil, errors.New("connection closed")
	default:
	}
	// Concurrent reads and writes keep many requests in flight, which is
	// what makes SFTP as fast as scp.
	sc, err := openRetrying(ctx, c, func() (*sftp.Client, error) {
		return sftp.NewClient(c.conn, sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true), sftp.UseFstat(true))
	})
	if err != nil {
		return nil, fmt.Errorf("start sftp: %w", err)
	}
	// Servers that announce their limits are OpenSSH 8.7+; the limits
	// themselves are not exposed by pkg/sftp, but OpenSSH's are fixed.
	if _, ok := sc.HasExtension("limits@openssh.com"); ok {
		if err := sftp.MaxPacketUnchecked(openSSHMaxPacket)(sc); err != nil {
			sc.Close()
			return nil, fmt.Errorf("start sftp: %w", err)
		}
	}
	c.sftp = sc
	return sc, nil
}

// Upload copies the local file or directory tree src to dst on the node,
// like scp -rp: when dst is an existing directory, src goes inside it under
// its base name. Missing parent directories are created; permission bits are
// kept; symlinks inside a tree are recreated as symlinks. Each file is
// written under a temporary name in its directory and renamed into place
// when complete, so an interrupted transfer never leaves a partial file at
// its destination. A dst ending in "/" is a directory, created if missing.
// A leading "~/" in dst is the login user's home.
func (c *Client) Upload(ctx context.Context, src, dst string, progress Progress) error {
	if err := c.upload(ctx, src, dst, progress); err != nil {
		return fmt.Errorf("upload %s to %s:%s: %w", src, c.ep.Addr(), dst, c.transferErr(ctx, err))
	}
	return nil
}

// Download copies the file or directory tree src on the node to the local
// dst, with the same rules as Upload.
func (c *Client) Download(ctx context.Context, src, dst string, progress Progress) error {
	if err := c.download(ctx, src, dst, progress); err != nil {
		return fmt.Errorf("download %s:%s to %s: %w", c.ep.Addr(), src, dst, c.transferErr(ctx, err))
	}
	return nil
}

func (c *Client) transferErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return err
	}
	return c.lost(err)
}

// entry is one thing to copy in a tree; paths are the source and the
// destination ones.
type entry struct {
	src, dst string
	mode     fs.FileMode
}

// tree is what a directory copy does, in order: directories (parents
// first), files, symlinks, then the directories' modes (children first, so a
// read-only directory is filled before it becomes read-only).
type tree struct {
	dirs, files, links []entry
	total              int64
}

func (c *Client) upload(ctx context.Context, src, dst string, progress Progress) error {
	sc, err := c.sftpClient(ctx)
	if err != nil {
		return err
	}
	if dst, err = remoteHome(sc, dst); err != nil {
		return err
	}
	info, err := os.Stat(src) // a symlink given as src is followed, as scp does
	if err != nil {
		return err
	}
	if strings.HasSuffix(dst, "/") {
		// A trailing slash says dst is a directory, existing or not.
		if err := sc.MkdirAll(dst); err != nil {
			return fmt.Errorf("create directory %s: %w", dst, err)
		}
	}
	if rfi, err := sc.Stat(dst); err == nil && rfi.IsDir() {
		dst = path.Join(dst, filepath.Base(absClean(src)))
	}
	if err := sc.MkdirAll(path.Dir(dst)); err != nil {
		return fmt.Errorf("create directory %s: %w", path.Dir(dst), err)
	}
	if !info.IsDir() {
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file or directory", src)
		}
		t := newTracker(info.Size(), progress)
		return putFile(ctx, sc, src, dst, info.Mode(), t)
	}

	var tr tree
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{src: p, dst: path.Join(dst, filepath.ToSlash(rel)), mode: fi.Mode()}
		switch {
		case fi.IsDir():
			tr.dirs = append(tr.dirs, e)
		case fi.Mode().IsRegular():
			tr.files = append(tr.files, e)
			tr.total += fi.Size()
		case fi.Mode()&fs.ModeSymlink != 0:
			tr.links = append(tr.links, e)
		default:
			return fmt.Errorf("%s is not a regular file, directory or symlink", p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range tr.dirs {
		if err := sc.Mkdir(d.dst); err != nil {
			if fi, serr := sc.Lstat(d.dst); serr != nil || !fi.IsDir() {
				return fmt.Errorf("create directory %s: %w", d.dst, err)
			}
		}
	}
	t := newTracker(tr.total, progress)
	errs := FanOut(ctx, len(tr.files), transferWorkers, func(ctx context.Context, i int) error {
		f := tr.files[i]
		return putFile(ctx, sc, f.src, f.dst, f.mode, t)
	})
	if err := firstError(errs); err != nil {
		return err
	}
	for _, l := range tr.links {
		target, err := os.Readlink(l.src)
		if err != nil {
			return err
		}
		tmp := tmpName(l.dst)
		if err := sc.Symlink(target, tmp); err != nil {
			return fmt.Errorf("create symlink %s: %w", l.dst, err)
		}
		if err := rename(sc, tmp, l.dst); err != nil {
			sc.Remove(tmp)
			return fmt.Errorf("create symlink %s: %w", l.dst, err)
		}
	}
	for _, d := range slices.Backward(tr.dirs) {
		if err := sc.Chmod(d.dst, d.mode&modeBits); err != nil {
			return fmt.Errorf("chmod %s: %w", d.dst, err)
		}
	}
	return nil
}

// putFile writes one file to a temporary name beside remote and renames it
// into place once complete.
func putFile(ctx context.Context, sc *sftp.Client, local, remote string, mode fs.FileMode, t *tracker) (err error) {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	tmp := tmpName(remote)
	rf, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	open := true
	defer func() {
		if err != nil {
			if open {
				rf.Close()
			}
			sc.Remove(tmp) // fails when the connection is gone: the hidden temporary file then stays
		}
	}()
	// The mode is set before the first byte so a private file is never
	// readable by others, even half written.
	if err := rf.Chmod(mode & modeBits); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	// Size lets ReadFrom split the file into concurrent writes.
	if _, err := rf.ReadFrom(&progressReader{ctx: ctx, r: f, size: fi.Size(), t: t}); err != nil {
		return fmt.Errorf("write %s: %w", remote, err)
	}
	open = false
	if err := rf.Close(); err != nil {
		return fmt.Errorf("write %s: %w", remote, err)
	}
	if err := rename(sc, tmp, remote); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, remote, err)
	}
	return nil
}

// rename replaces to atomically where the server allows it.
func rename(sc *sftp.Client, from, to string) error {
	if _, ok := sc.HasExtension("posix-rename@openssh.com"); ok {
		return sc.PosixRename(from, to)
	}
	// Plain SFTPv3 rename refuses to replace a file: remove it first.
	if err := sc.Remove(to); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return sc.Rename(from, to)
}

func (c *Client) download(ctx context.Context, src, dst string, progress Progress) error {
	sc, err := c.sftpClient(ctx)
	if err != nil {
		return err
	}
	if src, err = remoteHome(sc, src); err != nil {
		return err
	}
	src = path.Clean(src)
	info, err := sc.Stat(src) // a symlink given as src is followed
	if err != nil {
		return err
	}
	if strings.HasSuffix(dst, string(filepath.Separator)) || strings.HasSuffix(dst, "/") {
		// A trailing slash says dst is a directory, existing or not.
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
	}
	if lfi, err := os.Stat(dst); err == nil && lfi.IsDir() {
		dst = filepath.Join(dst, path.Base(src))
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if !info.IsDir() {
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file or directory", src)
		}
		return getFile(ctx, sc, src, dst, info.Mode(), newTracker(info.Size(), progress))
	}

	var tr tree
	prefix := strings.TrimSuffix(src, "/") + "/"
	for w := sc.Walk(src); w.Step(); {
		if err := w.Err(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		p, fi := w.Path(), w.Stat()
		local := dst
		if p != src {
			local = filepath.Join(dst, filepath.FromSlash(strings.TrimPrefix(p, prefix)))
		}
		e := entry{src: p, dst: local, mode: fi.Mode()}
		switch {
		case fi.IsDir():
			tr.dirs = append(tr.dirs, e)
		case fi.Mode().IsRegular():
			tr.files = append(tr.files, e)
			tr.total += fi.Size()
		case fi.Mode()&fs.ModeSymlink != 0:
			tr.links = append(tr.links, e)
		default:
			return fmt.Errorf("%s is not a regular file, directory or symlink", p)
		}
	}
	for _, d := range tr.dirs {
		if err := os.Mkdir(d.dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	t := newTracker(tr.total, progress)
	errs := FanOut(ctx, len(tr.files), transferWorkers, func(ctx context.Context, i int) error {
		f := tr.files[i]
		return getFile(ctx, sc, f.src, f.dst, f.mode, t)
	})
	if err := firstError(errs); err != nil {
		return err
	}
	for _, l := range tr.links {
		target, err := sc.ReadLink(l.src)
		if err != nil {
			return fmt.Errorf("read symlink %s: %w", l.src, err)
		}
		tmp := localTmpName(l.dst)
		if err := os.Symlink(target, tmp); err != nil {
			return err
		}
		if err := os.Rename(tmp, l.dst); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	for _, d := range slices.Backward(tr.dirs) {
		if err := os.Chmod(d.dst, d.mode&modeBits); err != nil {
			return err
		}
	}
	return nil
}

// getFile reads one remote file into a temporary file beside local and
// renames it into place once complete.
func getFile(ctx context.Context, sc *sftp.Client, remote, local string, mode fs.FileMode, t *tracker) (err error) {
	rf, err := sc.Open(remote)
	if err != nil {
		return fmt.Errorf("open %s: %w", remote, err)
	}
	defer rf.Close()
	f, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+tmpMarker+"*")
	if err != nil {
		return err
	}
	open := true
	defer func() {
		if err != nil {
			if open {
				f.Close()
			}
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(mode & modeBits); err != nil {
		return err
	}
	if _, err := rf.WriteTo(&progressWriter{ctx: ctx, w: f, t: t}); err != nil {
		return fmt.Errorf("read %s: %w", remote, err)
	}
	open = false
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), local)
}

// remoteHome expands a leading "~" to the login user's home, where an SFTP
// session starts.
func remoteHome(sc *sftp.Client, p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := sc.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the home directory: %w", err)
	}
	return path.Join(home, p[1:]), nil
}

// tmpName is a hidden, unique name beside the remote path p.
func tmpName(p string) string {
	dir, base := path.Split(p)
	return dir + "." + base + tmpMarker + randomSuffix()
}

// localTmpName is tmpName for a local path.
func localTmpName(p string) string {
	return filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+tmpMarker+randomSuffix())
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func absClean(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// tracker adds up the progress of the files of one transfer.
type tracker struct {
	mu          sync.Mutex
	done, total int64
	fn          Progress
}

func newTracker(total int64, fn Progress) *tracker {
	t := &tracker{total: total, fn: fn}
	if fn != nil {
		fn(0, total)
	}
	return t
}

func (t *tracker) add(n int) {
	if t.fn == nil || n <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done += int64(n)
	t.fn(t.done, t.total)
}

// progressReader counts what is read and stops at ctx's end. Size makes
// sftp.File.ReadFrom use concurrent writes.
type progressReader struct {
	ctx  context.Context
	r    io.Reader
	size int64
	t    *tracker
}

func (r *progressReader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(b)
	r.t.add(n)
	return n, err
}

func (r *progressReader) Size() int64 { return r.size }

// progressWriter counts what is written and stops at ctx's end.
type progressWriter struct {
	ctx context.Context
	w   io.Writer
	t   *tracker
}

func (w *progressWriter) Write(b []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.w.Write(b)
	w.t.add(n)
	return n, err
}
