package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/cluster"
)

// LogsCmd writes a logs bundle of a cluster.
type LogsCmd struct {
	ClusterID string   `name:"cluster-id" short:"c" default:"${default_id}" help:"Cluster id."`
	Node      []string `help:"Only this node: master_0, agent_1, or a name or address as e2e inspect shows (repeatable; default every node)." placeholder:"NODE" sep:"none"`
	Dir       string   `help:"Directory to write the bundle into (made if missing; it must be empty). Default: e2e-logs-ID-TIME here." placeholder:"DIR" xor:"out"`
	Tar       string   `help:"Write the bundle as one tar archive instead (gzip-compressed when FILE ends in .tar.gz or .tgz)." placeholder:"FILE" xor:"out"`
}

func (c *LogsCmd) Run(e *env) error {
	dir := c.Dir
	if c.Tar == "" && dir == "" {
		dir = "e2e-logs-" + c.ClusterID + "-" + time.Now().UTC().Format("20060102T150405Z")
	}
	if c.Tar != "" {
		if err := checkTarPath(c.Tar); err != nil {
			return err
		}
	} else if err := checkLogsDir("--dir", dir); err != nil {
		return err
	}
	e.now("collecting the logs of cluster %q", c.ClusterID)
	cl, err := e.manager.Get(e.ctx, c.ClusterID)
	if err != nil {
		return err
	}
	defer cl.Close()
	var nodes []cluster.Node
	for _, ref := range c.Node {
		n, err := cl.Node(ref)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
	}
	if c.Tar != "" {
		return logsToTar(e, cl, c.Tar, nodes)
	}
	err = cl.CollectLogs(e.ctx, dir, nodes...)
	return bundleWritten(e, cl.ID, dir, err)
}

// bundleWritten prints where a bundle is and says what it lacks; a bundle
// that lacks parts is a failure (exit 1), but it is there.
func bundleWritten(e *env, id, where string, err error) error {
	var le *cluster.LogsError
	if err != nil && !errors.As(err, &le) {
		return err
	}
	fmt.Fprintln(e.stdout, where)
	if le != nil {
		return fmt.Errorf("logs bundle %s is incomplete: %s", where, strings.Join(le.Problems, "; "))
	}
	e.say("wrote the logs of cluster %s to %s", id, where)
	return nil
}

// logsToTar collects the bundle into a temporary directory in the
// cluster's state directory (in E2E_HOME: never the user's directory,
// and removed with the cluster even after a kill -9), writes it as a tar
// archive (entries under e2e-logs-ID/) into one new file beside file
// named .NAME.e2e-tmp-*, and publishes that without replacing anything:
// a file that appeared at file meanwhile stays, and the run fails.
func logsToTar(e *env, cl *cluster.Cluster, file string, nodes []cluster.Node) error {
	tmp, err := os.MkdirTemp(cl.StateDir, "logs-tmp-")
	if err != nil {
		return fmt.Errorf("--tar: %w", err)
	}
	defer os.RemoveAll(tmp)
	cerr := cl.CollectLogs(e.ctx, filepath.Join(tmp, "bundle"), nodes...)
	var le *cluster.LogsError
	if cerr != nil && !errors.As(cerr, &le) {
		return cerr
	}
	part, err := writeTar(file, filepath.Join(tmp, "bundle"), "e2e-logs-"+cl.ID, strings.HasSuffix(file, ".gz") || strings.HasSuffix(file, ".tgz"))
	if part != "" {
		defer os.Remove(part)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	// A hard link fails when file exists; rename would replace it.
	if err := os.Link(part, file); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("--tar %s: the file appeared while the logs were collected; it was left as it is (give a new file name)", file)
		}
		return fmt.Errorf("--tar %s: %w", file, unwrapPath(err))
	}
	if le != nil {
		cerr = &cluster.LogsError{Dir: file, Problems: le.Problems}
	}
	return bundleWritten(e, cl.ID, file, cerr)
}

// writeTar writes the tree under dir as a tar archive, each entry's name
// under prefix, into a new file beside file (.NAME.e2e-tmp-*, 0600) and
// returns that file's path (empty when it could not be made).
func writeTar(file, dir, prefix string, gz bool) (part string, err error) {
	f, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".e2e-tmp-*")
	if err != nil {
		return "", err
	}
	part = f.Name()
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	var w io.Writer = f
	if gz {
		zw := gzip.NewWriter(f)
		defer func() {
			if cerr := zw.Close(); err == nil {
				err = cerr
			}
		}()
		w = zw
	}
	tw := tar.NewWriter(w)
	defer func() {
		if cerr := tw.Close(); err == nil {
			err = cerr
		}
	}()
	return part, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(filepath.Join(prefix, rel))
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
}

// checkLogsDir refuses a directory for a bundle that exists and is not
// empty, or is no directory: a bundle is never mixed with other files.
func checkLogsDir(flag, dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if target, lerr := os.Readlink(dir); lerr == nil {
			return invalid(fmt.Errorf("%s %s: a symbolic link to %s, which does not exist: give a new or empty directory", flag, dir, target))
		}
		return nil
	case err != nil:
		return invalid(fmt.Errorf("%s %s: %v: give a new or empty directory", flag, dir, unwrapPath(err)))
	case len(entries) > 0:
		return invalid(fmt.Errorf("%s %s: the directory is not empty: give a new or empty directory for the logs bundle", flag, dir))
	}
	return nil
}

// checkTarPath refuses an archive path that exists or whose directory
// does not.
func checkTarPath(file string) error {
	if _, err := os.Lstat(file); err == nil {
		return invalid(fmt.Errorf("--tar %s: the file exists: give a new file name", file))
	}
	if st, err := os.Stat(filepath.Dir(file)); err != nil || !st.IsDir() {
		return invalid(fmt.Errorf("--tar %s: directory %s does not exist", file, filepath.Dir(file)))
	}
	return nil
}

// unwrapPath drops the operation and path of a *fs.PathError, which the
// message names already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// logsOnFailure writes a logs bundle of a cluster into dir after a failed
// step (unless the user interrupted it, the failure was bad input, or dir
// is empty) and says where;
// failing to collect is only a warning: the step's own error is what the
// command reports.
func logsOnFailure(e *env, cl *cluster.Cluster, dir string, failure error) {
	if dir == "" || e.ctx.Err() != nil || cluster.IsInvalid(failure) {
		return
	}
	// The step failed, and the bundle is written even so; it gets its own
	// time limit.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 5*time.Minute)
	defer cancel()
	err := cl.CollectLogs(ctx, dir)
	var le *cluster.LogsError
	switch {
	case err == nil:
		e.say("logs of cluster %s: %s", cl.ID, dir)
	case errors.As(err, &le):
		e.say("logs of cluster %s: %s (incomplete: %s)", cl.ID, dir, strings.Join(le.Problems, "; "))
	default:
		e.say("could not write the logs of cluster %s to %s: %v", cl.ID, dir, oneLine(err))
	}
}
