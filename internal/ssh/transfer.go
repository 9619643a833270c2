package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/e2e-tool/e2e/internal/transfer"
	"github.com/pkg/sftp"
)

// Progress is told the bytes moved so far and the total of a transfer. It is
// never called concurrently for one transfer. It may be nil.
type Progress = transfer.Progress

const (
	// transferWorkers is how many files of a tree move at once; each file
	// also keeps many SFTP requests in flight.
	transferWorkers = 4
	// openSSHMaxPacket fits OpenSSH sftp-server's 256 KiB message limit
	// (SFTP_MAX_MSG_LENGTH less its 1 KiB allowance for headers); eight
	// times the 32 KiB every server must accept, so fewer round trips.
	openSSHMaxPacket = 256*1024 - 1024
	// maxRequestsPerFile bounds the SFTP requests in flight per file
	// (pkg/sftp's default is 64): each holds a packet of up to
	// openSSHMaxPacket, so this bounds memory per file (4 MiB) while
	// keeping enough in flight to fill the link.
	maxRequestsPerFile = 16
)

// sftpClient opens the connection's SFTP session on first use.
func (c *Client) sftpClient(ctx context.Context) (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	if c.closed() {
		return nil, errors.New("connection closed")
	}
	// Concurrent reads and writes keep many requests in flight, which is
	// what makes SFTP as fast as scp.
	sc, err := openRetrying(ctx, c, func() (*sftp.Client, error) {
		return sftp.NewClient(c.conn, sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true), sftp.UseFstat(true),
			sftp.MaxConcurrentRequestsPerFile(maxRequestsPerFile))
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

// sftpFS is the node's file system as SFTP shows it: paths are absolute
// on the node, and links are resolved by the server.
type sftpFS struct{ sc *sftp.Client }

func (f sftpFS) Stat(_ context.Context, name string) (transfer.Info, error) {
	fi, err := f.sc.Stat(name)
	if err != nil {
		return transfer.Info{}, fmt.Errorf("%s: %w", name, err)
	}
	return transfer.Info{Mode: fi.Mode(), Size: fi.Size()}, nil
}

func (f sftpFS) Lstat(_ context.Context, name string) (transfer.Info, error) {
	fi, err := f.sc.Lstat(name)
	if err != nil {
		return transfer.Info{}, fmt.Errorf("%s: %w", name, err)
	}
	return transfer.Info{Mode: fi.Mode(), Size: fi.Size()}, nil
}

func (f sftpFS) ReadDir(_ context.Context, name string) ([]transfer.Entry, error) {
	fis, err := f.sc.ReadDir(name)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", name, err)
	}
	out := make([]transfer.Entry, len(fis))
	for i, fi := range fis {
		out[i] = transfer.Entry{Name: fi.Name(), Info: transfer.Info{Mode: fi.Mode(), Size: fi.Size()}}
	}
	return out, nil
}

func (f sftpFS) RealPath(_ context.Context, name string) (string, error) {
	p, err := f.sc.RealPath(name)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", name, err)
	}
	return p, nil
}

func (sftpFS) Join(dir, rel string) string { return path.Join(dir, rel) }
func (sftpFS) Base(name string) string     { return path.Base(name) }

// RemotePath makes a path given for a node absolute: a leading "~" is the
// login user's home, as is the start of a relative path (where sshd and
// the exec transport start); a trailing "/" is kept (it means "inside
// this directory").
func RemotePath(home, p string) string {
	switch {
	case p == "~" || strings.HasPrefix(p, "~/"):
		p = home + p[1:]
	case !strings.HasPrefix(p, "/"):
		p = home + "/" + p
	}
	if strings.HasSuffix(p, "/") && p != "/" {
		return path.Clean(p) + "/"
	}
	return path.Clean(p)
}

// RemoteSource is RemotePath for what is copied from a node, where a
// trailing "/" means nothing.
func RemoteSource(home, p string) string {
	if p = strings.TrimSuffix(RemotePath(home, p), "/"); p == "" {
		return "/"
	}
	return p
}

// sftpHome is the SFTP session and the login user's home, where it starts.
func (c *Client) sftpHome(ctx context.Context) (*sftp.Client, string, error) {
	sc, err := c.sftpClient(ctx)
	if err != nil {
		return nil, "", err
	}
	h, err := sc.Getwd()
	if err != nil {
		return nil, "", fmt.Errorf("find the home directory: %w", err)
	}
	return sc, h, nil
}

// Upload copies the local file or directory tree src to dst on the node,
// by the contract of package transfer: dst becomes a copy of src (a
// directory merged into an existing one, never nested), links followed,
// modes kept; a dst ending in "/" is a directory to copy into; missing
// parents are made; a leading "~/" (or a relative path) is in the login
// user's home. Each file is written under a temporary name beside its
// place and renamed into it when complete, so an interrupted transfer
// never leaves a partial file there. Mistakes in the local input are
// *transfer.InputError.
func (c *Client) Upload(ctx context.Context, src, dst string, progress Progress) error {
	p, err := transfer.Walk(ctx, transfer.LocalFS{}, src)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return &transfer.InputError{Err: err}
	}
	return c.UploadPlan(ctx, p, dst, progress)
}

// UploadPlan is Upload of what transfer.Walk found on this machine, so that
// a copy to many nodes walks the local tree once.
func (c *Client) UploadPlan(ctx context.Context, p *transfer.Plan, dst string, progress Progress) error {
	if err := c.upload(ctx, p, dst, progress); err != nil {
		return c.transferErr(ctx, err)
	}
	return nil
}

// Download copies the file or directory tree src on the node to the local
// dst, by the same contract as Upload. Local files are written through an
// os.Root (see transfer.LocalSink). Mistakes in the local input (dst of
// the wrong type) are *transfer.InputError.
func (c *Client) Download(ctx context.Context, src, dst string, progress Progress) error {
	if err := c.download(ctx, src, dst, progress); err != nil {
		var input *transfer.InputError
		if errors.As(err, &input) {
			return err
		}
		return c.transferErr(ctx, err)
	}
	return nil
}

func (c *Client) transferErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return err
	}
	return c.lost(err)
}

func (c *Client) upload(ctx context.Context, p *transfer.Plan, dst string, progress Progress) error {
	sc, h, err := c.sftpHome(ctx)
	if err != nil {
		return err
	}
	fsys := sftpFS{sc}
	t, err := transfer.Resolve(ctx, fsys, p, RemotePath(h, dst))
	if err != nil {
		return err
	}
	if err := sc.MkdirAll(path.Dir(t.Path)); err != nil {
		return fmt.Errorf("create directory %s: %w", path.Dir(t.Path), err)
	}
	tr := transfer.NewTracker(p.Total, progress)
	if !p.Dir {
		return putFile(ctx, sc, p.Src, t.Path, p.Mode, tr)
	}
	mkdir := func(d string) error {
		if err := sc.Mkdir(d); err != nil {
			// An existing directory (or link to one) is merged into.
			if fi, serr := sc.Stat(d); serr != nil || !fi.IsDir() {
				return fmt.Errorf("create directory %s: %w", d, err)
			}
		}
		return nil
	}
	if err := mkdir(t.Path); err != nil {
		return err
	}
	for _, it := range p.Items {
		if it.Dir {
			if err := mkdir(path.Join(t.Path, it.Rel)); err != nil {
				return err
			}
		}
	}
	files := p.Files()
	local := transfer.LocalFS{}
	errs := FanOut(ctx, len(files), transferWorkers, func(ctx context.Context, i int) error {
		f := files[i]
		return putFile(ctx, sc, local.Join(p.Src, f.Rel), path.Join(t.Path, f.Rel), f.Mode, tr)
	})
	if err := firstError(errs); err != nil {
		return err
	}
	// Modes last, children first: a read-only directory is filled first.
	for _, it := range slices.Backward(p.Items) {
		if it.Dir {
			if err := sc.Chmod(path.Join(t.Path, it.Rel), it.Mode); err != nil {
				return fmt.Errorf("chmod %s: %w", path.Join(t.Path, it.Rel), err)
			}
		}
	}
	if err := sc.Chmod(t.Path, p.Mode); err != nil {
		return fmt.Errorf("chmod %s: %w", t.Path, err)
	}
	return nil
}

// putFile writes one local file (read through links) to a temporary name
// beside remote and renames it into place once complete.
func putFile(ctx context.Context, sc *sftp.Client, local, remote string, mode fs.FileMode, t *transfer.Tracker) (err error) {
	f, size, err := transfer.OpenFile(local)
	if err != nil {
		return err
	}
	defer f.Close()
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
	if err := rf.Chmod(mode & transfer.ModeBits); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	// Bytes lets ReadFrom split the file into concurrent writes.
	if _, err := rf.ReadFrom(&transfer.ProgressReader{Ctx: ctx, R: f, Bytes: size, T: t}); err != nil {
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
	sc, h, err := c.sftpHome(ctx)
	if err != nil {
		return err
	}
	src = RemoteSource(h, src)
	fsys := sftpFS{sc}
	p, sink, err := transfer.PrepareDownload(ctx, fsys, src, dst)
	if err != nil {
		return err
	}
	tr := transfer.NewTracker(p.Total, progress)
	get := func(remote, rel string, mode fs.FileMode) error {
		return sink.WriteFile(rel, mode, func(w io.Writer) error {
			rf, err := sc.Open(remote)
			if err != nil {
				return fmt.Errorf("open %s: %w", remote, err)
			}
			defer rf.Close()
			if _, err := rf.WriteTo(&transfer.ProgressWriter{Ctx: ctx, W: w, T: tr}); err != nil {
				return fmt.Errorf("read %s: %w", remote, err)
			}
			return nil
		})
	}
	if !p.Dir {
		if err := get(src, "", p.Mode); err != nil {
			sink.Close()
			return err
		}
		return sink.Finish()
	}
	files := p.Files()
	errs := FanOut(ctx, len(files), transferWorkers, func(ctx context.Context, i int) error {
		return get(fsys.Join(src, files[i].Rel), files[i].Rel, files[i].Mode)
	})
	if err := firstError(errs); err != nil {
		sink.Close()
		return err
	}
	return sink.Finish()
}

// tmpName is a hidden, unique name beside the remote path p.
func tmpName(p string) string {
	return transfer.TmpName(path.Split(p))
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
