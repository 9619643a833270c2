package transfer

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
)

const filepathSeparator = filepath.Separator

// LocalFS is this machine's file system.
type LocalFS struct{}

func infoOf(fi fs.FileInfo) Info { return Info{Mode: fi.Mode(), Size: fi.Size()} }

// Stat is os.Stat.
func (LocalFS) Stat(_ context.Context, name string) (Info, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return Info{}, err
	}
	return infoOf(fi), nil
}

// Lstat is os.Lstat.
func (LocalFS) Lstat(_ context.Context, name string) (Info, error) {
	fi, err := os.Lstat(name)
	if err != nil {
		return Info{}, err
	}
	return infoOf(fi), nil
}

// ReadDir is os.ReadDir, with each entry's Lstat.
func (LocalFS) ReadDir(_ context.Context, name string) ([]Entry, error) {
	des, err := os.ReadDir(name)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(des))
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Name: de.Name(), Info: infoOf(fi)})
	}
	return out, nil
}

// RealPath is filepath.EvalSymlinks of the absolute path.
func (LocalFS) RealPath(_ context.Context, name string) (string, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// Join is filepath.Join.
func (LocalFS) Join(dir, rel string) string { return filepath.Join(dir, filepath.FromSlash(rel)) }

// Base is the base name of name's absolute path ("." names the current
// directory's name).
func (LocalFS) Base(name string) string {
	if abs, err := filepath.Abs(name); err == nil {
		name = abs
	}
	return filepath.Base(name)
}

// RandomSuffix is a random hex string for temporary names.
func RandomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// LocalSink writes a copy of a Plan at a local Target. Every name it
// writes goes through an os.Root, so nothing is written outside the
// target (a file's directory, or the directory the copy becomes), not
// even through a symbolic link already there. Files are written under a
// temporary name beside their place and renamed into it once complete;
// directory modes are set last, children first, so a read-only directory
// is filled before it becomes read-only.
type LocalSink struct {
	plan *Plan
	root *os.Root
	// name is the file's name in root for a file plan; "." for a
	// directory plan (root is the directory).
	name string
}

// NewLocalSink makes t's missing parents, and for a directory plan the
// directory itself and every directory of the plan.
func NewLocalSink(p *Plan, t Target) (*LocalSink, error) {
	s := &LocalSink{plan: p, name: "."}
	dir := t.Path
	if !p.Dir {
		dir, s.name = filepath.Dir(t.Path), filepath.Base(t.Path)
	}
	if err := os.MkdirAll(filepath.Dir(t.Path), 0o755); err != nil {
		return nil, err
	}
	if p.Dir {
		// Owner-only until filled; Finish gives it its mode.
		if err := os.Mkdir(t.Path, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	s.root = root
	for _, it := range p.Items {
		if !it.Dir {
			continue
		}
		if err := root.Mkdir(it.Rel, 0o700); err != nil {
			if fi, serr := root.Stat(it.Rel); serr != nil || !fi.IsDir() {
				root.Close()
				return nil, fmt.Errorf("create directory %s: %w", filepath.Join(dir, filepath.FromSlash(it.Rel)), err)
			}
		}
	}
	return s, nil
}

// Path is where rel (an Item's Rel, or "" for a file plan) is written.
func (s *LocalSink) Path(rel string) string {
	return filepath.Join(s.root.Name(), filepath.FromSlash(s.nameOf(rel)))
}

func (s *LocalSink) nameOf(rel string) string {
	if !s.plan.Dir {
		return s.name
	}
	return rel
}

// WriteFile writes the file rel ("" for a file plan) with mode: fill
// writes its content to a temporary file beside it, renamed into place
// when fill succeeds and removed when it fails.
func (s *LocalSink) WriteFile(rel string, mode fs.FileMode, fill func(w io.Writer) error) (err error) {
	name := s.nameOf(rel)
	tmp := TmpName(path.Split(name))
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			s.root.Remove(tmp)
		}
	}()
	// The mode is set before the first byte: a private file is never
	// readable by others, even half written.
	if err := f.Chmod(mode & ModeBits); err != nil {
		return err
	}
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return s.root.Rename(tmp, name)
}

// Finish gives the directories their modes, children first, and closes
// the sink. Call it (or Close) once.
func (s *LocalSink) Finish() error {
	defer s.root.Close()
	if !s.plan.Dir {
		return nil
	}
	for _, it := range slices.Backward(s.plan.Items) {
		if it.Dir {
			if err := s.root.Chmod(it.Rel, it.Mode); err != nil {
				return err
			}
		}
	}
	return s.root.Chmod(".", s.plan.Mode)
}

// Close closes the sink without setting modes (after a failure).
func (s *LocalSink) Close() error { return s.root.Close() }

// PrepareDownload is what every transport does before a download moves a
// byte: the Plan of src on the node's fsys (src absolute there), and the
// sink that writes it to the local dst. A local dst of the wrong type is
// an *InputError.
func PrepareDownload(ctx context.Context, fsys FS, src, dst string) (*Plan, *LocalSink, error) {
	p, err := Walk(ctx, fsys, src)
	if err != nil {
		return nil, nil, err
	}
	t, err := Resolve(ctx, LocalFS{}, p, dst)
	if err != nil {
		return nil, nil, &InputError{Err: err}
	}
	sink, err := NewLocalSink(p, t)
	if err != nil {
		return nil, nil, err
	}
	return p, sink, nil
}

// OpenFile opens a local file a Plan found (through links) to send it,
// and returns its size now; it is an error if something other than a
// regular file is there now.
func OpenFile(name string) (*os.File, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	fi, err := regular(f)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

func regular(f *os.File) (fs.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is no longer a regular file", f.Name())
	}
	return fi, nil
}
