package plugin

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// stageRelease gets the release archive of s, checks it against its
// SHA256SUMS before reading a byte of its content, and writes the one
// plugin executable it holds to the file create makes, which it calls only
// once the archive's checksum matched. It returns the backend name the
// executable is named for, the executable's sha256 and the archive's.
func stageRelease(ctx context.Context, s source, create func() (io.Writer, error)) (name, sum, archiveSum string, err error) {
	if !isURL(s.archive) && !s.at {
		// Say that the archive is missing rather than its checksum list.
		if _, err := os.Stat(s.archive); errors.Is(err, os.ErrNotExist) {
			return "", "", "", noSuchFile(s.archive)
		}
	}
	want, err := checksumFor(ctx, s.sums, s.file)
	if errors.Is(err, errNoChecksums) && s.at {
		return "", "", "", refuse(ErrBadArchive, "the mirror %s has no %s %s for %s/%s (no %s): see the versions it holds",
			s.mirror, s.label.name, s.label.version, s.label.goos, s.label.goarch, displayLoc(s.sums))
	}
	if err != nil {
		return "", "", "", err
	}
	// A download goes to a temporary file outside the plugin directory
	// first; a local archive is read where it is.
	local := s.archive
	if isURL(s.archive) {
		tmp, err := os.CreateTemp("", "e2e-plugin-*.tar.gz")
		if err != nil {
			return "", "", "", err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		if _, err := fetch(ctx, s.archive, tmp, maxArchiveBytes); err != nil {
			return "", "", "", err
		}
		local = tmp.Name()
	}
	got, err := fetch(ctx, local, io.Discard, maxArchiveBytes)
	if err != nil {
		return "", "", "", err
	}
	if got != want {
		return "", "", "", refuse(ErrBadArchive, "refusing to install %s: its sha256 is %s but %s lists %s: the archive is damaged or not the one released; nothing was changed",
			s.display, got, displayLoc(s.sums), want)
	}
	f, err := os.Open(local)
	if err != nil {
		return "", "", "", err
	}
	defer f.Close()
	dst, err := create()
	if err != nil {
		return "", "", "", err
	}
	// The archive is read again to unpack it: hash it again on the way,
	// so a file changed since it was checked is caught.
	again := sha256.New()
	r := io.TeeReader(readerCtx{ctx, f}, again)
	name, sum, err = unpackPlugin(r, dst, s.display)
	if err != nil {
		return "", "", "", err
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return "", "", "", err
	}
	if hex.EncodeToString(again.Sum(nil)) != want {
		return "", "", "", refuse(ErrBadArchive, "refusing to install %s: it changed while it was installed; nothing was changed", s.display)
	}
	return name, sum, got, nil
}

// unpackPlugin reads a gzip-compressed tar stream and copies its plugin
// executable, the one regular file whose base name is e2e-backend-NAME, to
// dst. Entries are never written by their names: the archive may hold
// other files (a LICENSE, a README) that are skipped, and directories, but
// an entry whose name is not local to the archive (absolute, or leaving it
// through ".."), a link, a device, or a second executable refuses the
// whole archive. It returns NAME and the executable's hex sha256.
func unpackPlugin(r io.Reader, dst io.Writer, display string) (name, sum string, err error) {
	bad := func(format string, args ...any) error {
		return refuse(ErrBadArchive, "refusing to install %s: "+format, append([]any{display}, args...)...)
	}
	// A read stopped by an interruption (Ctrl-C) says so: the archive is
	// not to blame.
	stopped := func(err error) bool {
		return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
	}
	zr, err := gzip.NewReader(r)
	if stopped(err) {
		return "", "", fmt.Errorf("installing %s: %w", display, err)
	}
	if err != nil {
		return "", "", bad("it is not a gzip-compressed tar archive (%v)", err)
	}
	tr := tar.NewReader(zr)
	h := sha256.New()
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if stopped(err) {
			return "", "", fmt.Errorf("installing %s: %w", display, err)
		}
		if err != nil {
			return "", "", bad("it is not a readable tar archive (%v)", err)
		}
		if !filepath.IsLocal(hdr.Name) {
			return "", "", bad("its entry %q points outside the archive; nothing was changed", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue
		default:
			return "", "", bad("its entry %q is a link or special file; a release archive holds regular files only", hdr.Name)
		}
		base := path.Base(hdr.Name)
		found, ok := strings.CutPrefix(base, Prefix)
		if !ok || found == "" {
			continue
		}
		if name != "" {
			return "", "", bad("it holds more than one plugin executable (%s%s and %q)", Prefix, name, hdr.Name)
		}
		if hdr.Size > maxArchiveBytes {
			return "", "", bad("its %s is larger than %d MiB", base, maxArchiveBytes>>20)
		}
		name = found
		if _, err := io.Copy(io.MultiWriter(dst, h), tr); stopped(err) {
			return "", "", fmt.Errorf("installing %s: %w", display, err)
		} else if err != nil {
			return "", "", bad("reading %s from it: %v", base, err)
		}
	}
	if name == "" {
		return "", "", bad("it holds no plugin executable (a file named %sNAME)", Prefix)
	}
	if !backendName.MatchString(name) {
		return "", "", bad("its executable %s%s is not named for a backend (lower case letters, digits, - and _)", Prefix, name)
	}
	return name, hex.EncodeToString(h.Sum(nil)), nil
}

// stageExecutable copies the plugin executable at abs to the file create
// makes and returns
// the backend name its file is named for and its sha256. It refuses, without
// running it, a file that cannot be a plugin (see looksInstallable).
func stageExecutable(abs, display string, create func() (io.Writer, error)) (name, sum string, err error) {
	if err := looksInstallable(abs); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", "", err
		}
		return "", "", fmt.Errorf("refusing to install %s: %w", display, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	dst, err := create()
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(dst, h), f); err != nil {
		return "", "", fmt.Errorf("copying %s: %w", display, err)
	}
	return strings.TrimPrefix(filepath.Base(abs), Prefix), hex.EncodeToString(h.Sum(nil)), nil
}
