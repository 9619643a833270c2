package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/sdk/host"
)

// Install installs a plugin for this user into the data dir. src is a
// plugin executable (e2e-backend-NAME), a release archive (a local
// .tar.gz or .tgz, or an https URL; http only from this machine), or
// NAME@VERSION, looked up in opts.Mirror or $E2E_PLUGIN_MIRROR.
//
// A release archive is checked against its SHA256SUMS before its content
// is read. The plugin is then written to a temporary name in the data dir
// and started there, checked to answer the plugin handshake as the backend
// it is named for (and, for a named release, the version), and only then
// renamed over the installed one and recorded in the manifest with its
// sha256. Whatever is refused leaves the installed plugin as it was.
//
// Errors: a file that is not there wraps fs.ErrNotExist; an archive or
// checksum that is refused wraps ErrBadArchive; a source that cannot be
// used (plain http elsewhere, NAME@VERSION without a mirror) ErrBadSource;
// a file that is no plugin ErrNotPlugin; a plugin named for another
// backend ErrNameMismatch; a plugin of that name installed already,
// without opts.Force, ErrAlreadyInstalled.
func (h *Host) Install(ctx context.Context, src string, opts InstallOptions) (ManifestEntry, string, error) {
	s, err := resolve(src, opts)
	if err != nil {
		return ManifestEntry{}, "", err
	}
	dir := h.dirs.Installed
	if s.labeled && !opts.Force {
		// Say so before downloading anything.
		if err := notInstalled(dir, s.label.name); err != nil {
			return ManifestEntry{}, "", err
		}
	}
	// The staged file is made only once what goes into it has passed the
	// checks that need no running.
	var tmp *os.File
	create := func() (io.Writer, error) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating the plugin directory: %w", err)
		}
		sweepStaged(dir)
		f, err := os.CreateTemp(dir, stagedPattern(os.Getpid()))
		tmp = f
		return f, err
	}
	defer func() {
		if tmp != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	var name, sum, archiveSum string
	if s.exec != "" {
		name, sum, err = stageExecutable(s.exec, s.display, create)
	} else {
		name, sum, archiveSum, err = stageRelease(ctx, s, create)
	}
	if err == nil {
		err = tmp.Chmod(0o755)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err != nil {
		return ManifestEntry{}, "", err
	}
	staged := tmp.Name()

	desc, err := h.handshake(ctx, staged, name, sum, s.display)
	if err != nil {
		return ManifestEntry{}, "", err
	}
	switch {
	case desc.Name != name && s.exec != "":
		// Discovery goes by file name: a file named for another backend
		// than the one it reports would be found, and used, under the
		// wrong name.
		return ManifestEntry{}, "", &nameMismatch{path: src, named: name, reported: desc.Name}
	case desc.Name != name:
		return ManifestEntry{}, "", refuse(ErrBadArchive, "refusing to install %s: its %s%s is the plugin of backend %q, not %q", s.display, Prefix, name, desc.Name, name)
	case s.labeled && (desc.Name != s.label.name || desc.Version != s.label.version):
		return ManifestEntry{}, "", refuse(ErrBadArchive, "refusing to install %s: it is named for %s %s but holds %s %s", s.display, s.label.name, s.label.version, desc.Name, desc.Version)
	}

	unlock, err := lockDir(dir)
	if err != nil {
		return ManifestEntry{}, "", err
	}
	defer unlock()
	m, err := LoadManifest(dir)
	if err != nil {
		return ManifestEntry{}, "", err
	}
	if old, ok := m.Plugins[name]; ok && !opts.Force {
		return ManifestEntry{}, "", alreadyInstalled(name, old)
	}
	file := Prefix + name
	// The rename replaces the old executable in one step: a plugin
	// started before it runs the old file, one started after the new.
	if err := os.Rename(staged, filepath.Join(dir, file)); err != nil {
		return ManifestEntry{}, "", fmt.Errorf("installing %s: %w", s.display, err)
	}
	entry := ManifestEntry{File: file, SHA256: sum, Version: desc.Version, Protocol: desc.Protocol,
		Source: s.display, ArchiveSHA256: archiveSum, InstalledAt: time.Now().UTC()}
	m.Plugins[name] = entry
	if err := m.save(dir); err != nil {
		return ManifestEntry{}, "", err
	}
	return entry, name, nil
}

// stagedPrefix starts the name of a plugin being installed; no plugin is
// named so (discovery looks for Prefix). The full name is
// .install-PID-START-RANDOM: the installing process's pid and start time
// (/proc/PID/stat), so a file whose installer is gone is known for one.
const stagedPrefix = ".install-"

// staleAfter is the age after which a staged file without an installer in
// its name (.install-RANDOM, as older versions of e2e named them) is left
// over from an install that was killed: an install writes its file and
// starts it within minutes.
const staleAfter = 24 * time.Hour

// stagedPattern is the os.CreateTemp pattern of a file staged by process
// pid.
func stagedPattern(pid int) string {
	return fmt.Sprintf("%s%d-%s-*", stagedPrefix, pid, processStart(pid))
}

// stagedBy reads the installer out of a staged file's name: its pid and
// start time; ok is false for a name without them.
func stagedBy(name string) (pid int, start string, ok bool) {
	rest, ok := strings.CutPrefix(name, stagedPrefix)
	if !ok {
		return 0, "", false
	}
	f := strings.SplitN(rest, "-", 3)
	if len(f) != 3 {
		return 0, "", false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 || strconv.Itoa(pid) != f[0] {
		return 0, "", false
	}
	for _, c := range f[1] {
		if c < '0' || c > '9' {
			return 0, "", false
		}
	}
	return pid, f[1], true
}

// sweepStaged removes the staged files of installs that were killed
// (kill -9) before they could remove them: only names Install makes,
// regular files of this user, in the plugin directory e2e owns. A file
// naming its installer is removed once that process no longer runs (a
// concurrent install keeps its own); an older-style one once it is a day
// old.
func sweepStaged(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), stagedPrefix) || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if !ownedByMe(path, false) {
			continue
		}
		if pid, start, ok := stagedBy(e.Name()); ok {
			if pid != os.Getpid() && !processAlive(pid, start) {
				_ = os.Remove(path)
			}
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleAfter {
			_ = os.Remove(path)
		}
	}
}

func alreadyInstalled(name string, old ManifestEntry) error {
	return fmt.Errorf("backend %q is %w (version %s): use --force to replace it", name, ErrAlreadyInstalled, old.Version)
}

// notInstalled is nil when no plugin called name is installed in dir.
func notInstalled(dir, name string) error {
	m, err := LoadManifest(dir)
	if err != nil {
		return err
	}
	if old, ok := m.Plugins[name]; ok {
		return alreadyInstalled(name, old)
	}
	return nil
}

// handshake starts the staged executable, pinned to sum so that what runs
// is what was checked, and returns its description. Its errors name
// display, what the user gave, rather than the temporary file.
func (h *Host) handshake(ctx context.Context, staged, name, sum, display string) (desc host.Description, err error) {
	p, err := h.Launch(ctx, Candidate{Name: name, Path: staged, Source: "install", SHA256: sum})
	if err != nil {
		var np *notPlugin
		if errors.As(err, &np) {
			return desc, fmt.Errorf("refusing to install %s: %w", display, &notPlugin{path: display, why: np.why})
		}
		return desc, &renamed{err: err, msg: "refusing to install " + display + ": " + strings.ReplaceAll(err.Error(), staged, display)}
	}
	desc = p.Desc
	p.Kill()
	return desc, nil
}

// renamed is err said with another message.
type renamed struct {
	err error
	msg string
}

func (e *renamed) Error() string { return e.msg }

// Unwrap returns the error it renames.
func (e *renamed) Unwrap() error { return e.err }
