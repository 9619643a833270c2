package transfer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// unixMode is mode as the permission bits of a tar header.
func unixMode(mode fs.FileMode) int64 {
	m := int64(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// WriteTar writes the local plan p as a tar stream: its top named top, and
// below it every Item. It holds only directories and regular files, with
// their modes: links were followed by Walk, and a file's content is read
// through them. Owners are left out (the unpacking user owns the copy). A
// file that is no longer a regular file, or shrank, since Walk is an
// error; one that grew is sent at its size when opened.
func WriteTar(ctx context.Context, w io.Writer, p *Plan, top string, t *Tracker) error {
	tw := tar.NewWriter(w)
	if !p.Dir {
		if err := addFile(ctx, tw, p.Src, top, p.Mode, t); err != nil {
			return err
		}
		return tw.Close()
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: top + "/", Mode: unixMode(p.Mode)}); err != nil {
		return err
	}
	var fsys LocalFS
	for _, it := range p.Items {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := top + "/" + it.Rel
		if it.Dir {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: unixMode(it.Mode)}); err != nil {
				return err
			}
			continue
		}
		if err := addFile(ctx, tw, fsys.Join(p.Src, it.Rel), name, it.Mode, t); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(ctx context.Context, tw *tar.Writer, src, name string, mode fs.FileMode, t *Tracker) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := regular(f)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: unixMode(mode), Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, &ProgressReader{Ctx: ctx, R: f, T: t}, fi.Size()); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s shrank while it was sent", src)
		}
		return err
	}
	return nil
}

// Unpack reads a tar stream of the files of p into s. The stream must hold
// exactly p's files, each once, as regular files: a directory plan's named
// by their Rel (optionally after "./"), a file plan's by p.Name. Anything
// else — a symbolic or hard link, a device, a name outside the plan (such
// as "../x" or "/etc/x"), a file twice — is refused before a byte of it is
// written; directories come from the plan, not from the stream. Files
// that were written stay (each one whole, see LocalSink).
func Unpack(ctx context.Context, r io.Reader, s *LocalSink, p *Plan, t *Tracker) error {
	want := map[string]fs.FileMode{}
	if p.Dir {
		for _, it := range p.Files() {
			want[it.Rel] = it.Mode
		}
	} else {
		want[p.Name] = p.Mode
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read the tar stream: %w", err)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		mode, ok := want[name]
		switch {
		case hdr.Typeflag != tar.TypeReg:
			return fmt.Errorf("refusing the tar entry %q of type %q: only regular files are expected (links are followed where they are)", hdr.Name, hdr.Typeflag)
		case !ok:
			return fmt.Errorf("refusing the tar entry %q: it is not one of the files asked for", hdr.Name)
		}
		delete(want, name)
		rel := name
		if !p.Dir {
			rel = ""
		}
		if err := s.WriteFile(rel, mode, func(w io.Writer) error {
			_, err := io.Copy(&ProgressWriter{Ctx: ctx, W: w, T: t}, tr)
			return err
		}); err != nil {
			return fmt.Errorf("write %s: %w", s.Path(rel), err)
		}
	}
	for name := range want {
		return fmt.Errorf("the tar stream lacks %s", name)
	}
	return nil
}
