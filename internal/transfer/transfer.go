// Package transfer is the one contract every file transfer of e2e keeps,
// whatever carries the bytes (SFTP, or tar streams through a backend's exec
// transport), in both directions:
//
//   - DST becomes a copy of SRC, so copying again changes nothing
//     (DC/OS E2E's send_file). A directory is merged into an existing
//     directory DST (files replaced, nothing deleted), never nested in it;
//     a DST ending in "/" means "inside this directory, under SRC's base
//     name". A file never replaces a directory, nor a directory a file.
//   - Symbolic links are followed, as DC/OS E2E's `tar -h` did: a link
//     arrives as a copy of what it points to. A dangling link or a link
//     cycle is an error naming the link, found by Walk before any byte
//     moves.
//
// Walk (what to copy) and Resolve (where it goes) are shared by every
// transport; they see files only through FS. LocalFS is this machine's;
// the SFTP and exec transports provide the node's. LocalSink writes
// downloads through os.Root, so nothing lands outside the destination.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"unicode/utf8"
)

// ModeBits are the mode bits a copy keeps: permissions and the setuid,
// setgid and sticky bits.
const ModeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// TmpMarker is in the name of everything being written; it gets its real
// name only by a rename once complete.
const TmpMarker = ".e2e-tmp-"

// nameMax is the longest file name (one path element) Linux file systems
// take, in bytes (NAME_MAX).
const nameMax = 255

// TmpName returns a hidden, unique temporary name for base inside dir
// (which is "" or ends in "/"): "." + base + TmpMarker + a random suffix.
// base is shortened (at a UTF-8 boundary) when the whole would pass
// NAME_MAX, so a file whose own name is near the limit can still be
// written under a temporary name and renamed.
func TmpName(dir, base string) string {
	suffix := TmpMarker + RandomSuffix()
	if room := nameMax - 1 - len(suffix); len(base) > room {
		cut := room
		for cut > 0 && !utf8.RuneStart(base[cut]) {
			cut--
		}
		base = base[:cut]
	}
	return dir + "." + base + suffix
}

// Info describes a file: its type and mode bits (as fs.FileMode) and size.
type Info struct {
	Mode fs.FileMode
	Size int64
}

// IsDir reports whether the file is a directory.
func (i Info) IsDir() bool { return i.Mode.IsDir() }

// Entry is one name in a directory, described without following a link
// (Info.Mode has fs.ModeSymlink for one).
type Entry struct {
	Name string
	Info Info
}

// FS is a file system a transfer looks at: this machine's or a node's.
// Paths are the FS's own (absolute on a node).
type FS interface {
	// Stat describes name with symbolic links followed; a missing name or
	// a dangling link is an error wrapping fs.ErrNotExist.
	Stat(ctx context.Context, name string) (Info, error)
	// Lstat describes name itself, a link not followed.
	Lstat(ctx context.Context, name string) (Info, error)
	// ReadDir lists a directory (name itself may be a link to one).
	ReadDir(ctx context.Context, name string) ([]Entry, error)
	// RealPath is name's absolute path with every link resolved.
	RealPath(ctx context.Context, name string) (string, error)
	// Join appends rel ("/"-separated) to dir.
	Join(dir, rel string) string
	// Base is the last element of name, as a copy into a directory names it.
	Base(name string) string
}

// Item is one directory or file below the top of a directory copy.
type Item struct {
	Rel  string      // "/"-separated path below the top
	Dir  bool        // a directory (else a regular file)
	Mode fs.FileMode // ModeBits of what it is (of a link's target)
	Size int64       // bytes, for a file
}

// Plan is what copying Src sends, found by Walk.
type Plan struct {
	Src  string      // the source as walked
	Name string      // Src's base name ("" when it has none, such as "/")
	Dir  bool        // Src is a directory (else a regular file)
	Mode fs.FileMode // Src's ModeBits
	// Items are the directories and files below a directory Src, parents
	// before children, names sorted.
	Items []Item
	// Total is the bytes of every file.
	Total int64
}

// Files are the regular files of a directory copy, in Items' order.
func (p *Plan) Files() []Item {
	var files []Item
	for _, it := range p.Items {
		if !it.Dir {
			files = append(files, it)
		}
	}
	return files
}

// InputError marks a mistake in what the caller gave: a missing local
// source, a dangling local link, a link cycle, a local destination of the
// wrong type. Callers report it as bad input.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// Walk finds what copying src from fsys sends. Links are followed; a
// dangling link is an error naming it (wrapping fs.ErrNotExist), as is a
// directory link leading back to a directory it is in (a cycle), and
// anything that is not a directory or regular file (a device, a socket,
// a FIFO). The whole tree is walked before the caller sends anything.
func Walk(ctx context.Context, fsys FS, src string) (*Plan, error) {
	info, err := fsys.Stat(ctx, src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if li, lerr := fsys.Lstat(ctx, src); lerr == nil && li.Mode&fs.ModeSymlink != 0 {
				return nil, dangling(src)
			}
			return nil, notExist(src + " does not exist")
		}
		return nil, err
	}
	name := fsys.Base(src)
	if name == "/" || name == "." || name == ".." {
		name = ""
	}
	p := &Plan{Src: src, Name: name, Dir: info.IsDir(), Mode: info.Mode & ModeBits}
	if !info.IsDir() {
		if !info.Mode.IsRegular() {
			return nil, notCopyable(src, info.Mode)
		}
		p.Total = info.Size
		return p, nil
	}
	real, err := fsys.RealPath(ctx, src)
	if err != nil {
		return nil, err
	}
	w := walker{fsys: fsys, plan: p}
	if err := w.dir(ctx, src, "", []string{real}); err != nil {
		return nil, err
	}
	return p, nil
}

type walker struct {
	fsys FS
	plan *Plan
}

// dir adds what is below dir; reals are the real paths of dir and the
// directories it is in, in walk order: going into one of them again would
// never end.
func (w *walker) dir(ctx context.Context, dir, rel string, reals []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := w.fsys.ReadDir(ctx, dir)
	if err != nil {
		return err
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	for _, e := range entries {
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\x00") {
			return fmt.Errorf("%s lists the entry %q, which is not a file name", dir, e.Name)
		}
		p, r := w.fsys.Join(dir, e.Name), path.Join(rel, e.Name)
		info, link := e.Info, e.Info.Mode&fs.ModeSymlink != 0
		if link {
			if info, err = w.fsys.Stat(ctx, p); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return dangling(p)
				}
				return fmt.Errorf("follow the symbolic link %s: %w", p, err)
			}
		}
		switch {
		case info.IsDir():
			real := w.fsys.Join(reals[len(reals)-1], e.Name)
			if link {
				if real, err = w.fsys.RealPath(ctx, p); err != nil {
					return err
				}
			}
			if slices.Contains(reals, real) {
				return fmt.Errorf("%s leads to %s, a directory it is in: links are followed, so the copy would never end", p, real)
			}
			w.plan.Items = append(w.plan.Items, Item{Rel: r, Dir: true, Mode: info.Mode & ModeBits})
			if err := w.dir(ctx, p, r, append(slices.Clip(reals), real)); err != nil {
				return err
			}
		case info.Mode.IsRegular():
			w.plan.Items = append(w.plan.Items, Item{Rel: r, Mode: info.Mode & ModeBits, Size: info.Size})
			w.plan.Total += info.Size
		default:
			return notCopyable(p, info.Mode)
		}
	}
	return nil
}

func dangling(p string) error {
	return notExist(p + " is a dangling symbolic link (links are followed, and it points to nothing)")
}

// notExist is an error of its own words that is fs.ErrNotExist.
type notExist string

func (e notExist) Error() string        { return string(e) }
func (e notExist) Is(target error) bool { return target == fs.ErrNotExist }

func notCopyable(p string, mode fs.FileMode) error {
	return fmt.Errorf("%s is a %s, not a regular file or directory: only those can be copied", p, kind(mode))
}

func kind(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeNamedPipe != 0:
		return "FIFO"
	case mode&fs.ModeSocket != 0:
		return "socket"
	case mode&fs.ModeDevice != 0:
		return "device"
	case mode&fs.ModeSymlink != 0:
		return "symbolic link"
	}
	return "special file"
}

// Target is where a copy goes.
type Target struct {
	// Path is the copy's path: DST, or DST/NAME for a DST ending in "/".
	Path string
	// Exists: a directory is at Path (merge into it) or a file (replace
	// it), as Plan.Dir says.
	Exists bool
}

// HasDirSuffix reports whether dst ends in "/" (or the local separator):
// "inside this directory".
func HasDirSuffix(dst string) bool {
	return strings.HasSuffix(dst, "/") || strings.HasSuffix(dst, string(filepathSeparator))
}

// Resolve decides where p's copy goes on fsys for the destination dst, by
// the contract in the package comment. A clash (a file onto a directory, a
// directory onto a file) is an error naming both; nothing is changed.
func Resolve(ctx context.Context, fsys FS, p *Plan, dst string) (Target, error) {
	if dst == "" {
		return Target{}, errors.New("no destination given")
	}
	t := dst
	if HasDirSuffix(dst) {
		if p.Name == "" {
			return Target{}, fmt.Errorf("%s has no name to copy it under into %s: give the destination without a trailing /", p.Src, dst)
		}
		info, err := fsys.Stat(ctx, dst)
		switch {
		case err == nil && !info.IsDir():
			return Target{}, fmt.Errorf("cannot copy %s into %s: it is not a directory", p.Src, dst)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return Target{}, err
		}
		t = fsys.Join(dst, p.Name)
	} else {
		t = fsys.Join(dst, "")
	}
	info, err := fsys.Stat(ctx, t)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Target{Path: t}, nil
	case err != nil:
		return Target{}, err
	case p.Dir && !info.IsDir():
		return Target{}, fmt.Errorf("cannot copy the directory %s to %s: %s is an existing file", p.Src, t, t)
	case !p.Dir && info.IsDir():
		return Target{}, fmt.Errorf("cannot copy the file %s to %s: %s is an existing directory (end it with / to copy into it)", p.Src, t, t)
	case !p.Dir && !info.Mode.IsRegular():
		return Target{}, fmt.Errorf("cannot copy %s to %s: %s is a %s", p.Src, t, t, kind(info.Mode))
	}
	return Target{Path: t, Exists: true}, nil
}
