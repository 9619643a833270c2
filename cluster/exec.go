package cluster

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/internal/ssh"
	"github.com/e2e-tool/e2e/sdk"
)

// usesExec reports whether the cluster's nodes are reached through the
// backend's own exec transport (the docker backend's transport=exec)
// instead of SSH.
func (c *Cluster) usesExec() bool { return c.Details["transport"] == "exec" }

// execPlugin returns the backend's plugin, started once per Cluster for
// the exec transport and stopped by Close.
func (c *Cluster) execPlugin(ctx context.Context) (*plugin.Plugin, error) {
	c.conns.mu.Lock()
	defer c.conns.mu.Unlock()
	if c.conns.plugin != nil {
		return c.conns.plugin, nil
	}
	p, err := c.client.open(ctx, c.Backend)
	if err != nil {
		return nil, err
	}
	if !p.Desc.Exec {
		p.Kill()
		return nil, fmt.Errorf("cluster %q asks for the exec transport but the %s backend has none", c.ID, c.Backend)
	}
	c.conns.plugin = p
	c.client.track(c)
	return p, nil
}

// execRun runs a command through the backend's Exec.
func (c *Cluster) execRun(ctx context.Context, n Node, cmd Command) (ExitStatus, error) {
	p, err := c.execPlugin(ctx)
	if err != nil {
		return ExitStatus{}, &SSHError{Err: err}
	}
	m, err := c.client.load(c.ID)
	if err != nil {
		return ExitStatus{}, err
	}
	argv := cmd.Argv
	if cmd.Shell != "" {
		argv = []string{"/bin/sh", "-c", cmd.Shell}
	}
	user := cmd.User
	if user == "" && cmd.Sudo {
		user = "root"
	}
	if user == "" {
		user = n.SSH.User
	}
	code, err := p.Exec(ctx, ref(m), sdk.ExecRequest{Node: n.Name, Argv: argv, Env: cmd.Env, User: user, TTY: cmd.TTY,
		Stdin: cmd.Stdin, Stdout: cmd.Stdout, Stderr: cmd.Stderr})
	if err != nil {
		if ctx.Err() != nil {
			return ExitStatus{}, ctx.Err()
		}
		return ExitStatus{}, &SSHError{Err: nodeError(n, p.Wrap("exec", err))}
	}
	return ExitStatus{Code: code}, nil
}

// execUpload streams src as a tar archive into `tar -x` on the node.
func (c *Cluster) execUpload(ctx context.Context, n Node, src, dst string) error {
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	dir, name := path.Dir(dst), path.Base(dst)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, src, name)) }()
	var stderr limitedBuffer
	line := "mkdir -p " + ssh.Quote([]string{dir}) + " && tar -x -p -f - -C " + ssh.Quote([]string{dir})
	if info.IsDir() {
		line = "mkdir -p " + ssh.Quote([]string{dst}) + " && " + line
	}
	st, err := c.execRun(ctx, n, Command{Shell: line, Sudo: true, Stdin: pr, Stderr: &stderr})
	pr.Close()
	if err != nil {
		return err
	}
	if st.Code != 0 {
		return fmt.Errorf("%s: unpacking into %s exited %d: %s", n.Ref(), dst, st.Code, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// writeTar writes src (a file or a tree) to w with its top entry named
// name.
func writeTar(w io.Writer, src, name string) error {
	tw := tar.NewWriter(w)
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		entry := path.Join(name, filepath.ToSlash(rel))
		if rel == "." {
			entry = name
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = entry, 0, 0, "root", "root"
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// execDownload streams `tar -c` from the node and unpacks it at dst.
func (c *Cluster) execDownload(ctx context.Context, n Node, src, dst string) error {
	pr, pw := io.Pipe()
	var stderr limitedBuffer
	done := make(chan error, 1)
	go func() {
		err := readTar(pr, dst)
		// tar pads its output past the end-of-archive marker: drain it, or
		// stop the writer when unpacking failed, so the command can end.
		if err != nil {
			pr.CloseWithError(err)
		} else {
			_, _ = io.Copy(io.Discard, pr)
		}
		done <- err
	}()
	st, err := c.execRun(ctx, n, Command{Shell: "tar -c -f - -C " + ssh.Quote([]string{path.Dir(src)}) + " " + ssh.Quote([]string{path.Base(src)}),
		Sudo: true, Stdout: pw, Stderr: &stderr})
	pw.Close()
	terr := <-done
	if err != nil {
		return err
	}
	if st.Code != 0 {
		return fmt.Errorf("%s: packing %s exited %d: %s", n.Ref(), src, st.Code, strings.TrimSpace(stderr.String()))
	}
	return terr
}

// readTar unpacks a tar stream whose top entry becomes dst. Files go to a
// temporary name first, so an interrupted download leaves no partial file.
func readTar(r io.Reader, dst string) error {
	tr := tar.NewReader(r)
	top := ""
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if top == "" {
			top = strings.SplitN(name, "/", 2)[0]
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(name, top), "/")
		if strings.Contains(rel, "..") {
			return fmt.Errorf("refusing tar entry %q", hdr.Name)
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		mode := os.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode|0o700); err != nil {
				return err
			}
		case tar.TypeSymlink:
			_ = os.Remove(target)
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".e2e-tmp-")
			if err != nil {
				return err
			}
			if _, err := io.Copy(tmp, tr); err != nil {
				tmp.Close()
				os.Remove(tmp.Name())
				return err
			}
			if err := tmp.Chmod(mode); err != nil {
				tmp.Close()
				os.Remove(tmp.Name())
				return err
			}
			tmp.Close()
			if err := os.Rename(tmp.Name(), target); err != nil {
				os.Remove(tmp.Name())
				return err
			}
		}
	}
}
