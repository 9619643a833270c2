package plugin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/internal/state"
	"github.com/gofrs/flock"
)

const manifestFile = "manifest.json"

// ManifestEntry records one installed plugin.
type ManifestEntry struct {
	File string `json:"file"`
	// SHA256 is the executable's; a launch refuses a file that differs.
	SHA256   string `json:"sha256"`
	Version  string `json:"version"`
	Protocol int    `json:"protocol"`
	// Source is where it was installed from: the executable's path, or
	// the release archive's path or URL (without credentials or query).
	Source string `json:"source"`
	// ArchiveSHA256 is the sha256 of the release archive, as its
	// SHA256SUMS listed it; empty for an executable installed as it is.
	ArchiveSHA256 string    `json:"archive_sha256,omitempty"`
	InstalledAt   time.Time `json:"installed_at"`
}

// Manifest lists the plugins `e2e plugin install` put in the data dir.
type Manifest struct {
	Plugins map[string]ManifestEntry `json:"plugins"`
}

// LoadManifest reads the manifest of dir; a missing one is empty.
func LoadManifest(dir string) (Manifest, error) {
	m := Manifest{Plugins: map[string]ManifestEntry{}}
	if dir == "" {
		return m, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("reading the plugin manifest: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("the plugin manifest %s is corrupt (%v): remove it and reinstall the plugins", filepath.Join(dir, manifestFile), err)
	}
	if m.Plugins == nil {
		m.Plugins = map[string]ManifestEntry{}
	}
	return m, nil
}

// lockDir takes an exclusive lock on the plugin directory so concurrent
// installs do not lose each other's manifest entries.
func lockDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the plugin directory: %w", err)
	}
	fl := flock.New(filepath.Join(dir, ".lock"), flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o644))
	if err := fl.Lock(); err != nil {
		return nil, err
	}
	return func() { _ = fl.Unlock() }, nil
}

func (m Manifest) save(dir string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return state.WriteFileAtomic(filepath.Join(dir, manifestFile), append(b, '\n'), 0o644)
}

// FileSHA256 returns the hex sha256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ErrAlreadyInstalled is wrapped when install would replace a plugin
// without --force.
var ErrAlreadyInstalled = errors.New("already installed")

// ErrNotInstalled is wrapped when removing a plugin that is not installed.
var ErrNotInstalled = errors.New("not installed")

// ErrNotPlugin is wrapped by the errors that say a file is not an e2e
// backend plugin.
var ErrNotPlugin = errors.New("not an e2e backend plugin")

// noSuchFile is a path where there is no file, said as a user reads it.
type noSuchFile string

func (e noSuchFile) Error() string { return "no such file: " + string(e) }

// Unwrap makes it an fs.ErrNotExist.
func (e noSuchFile) Unwrap() error { return os.ErrNotExist }

// ErrNameMismatch is wrapped when a plugin's file name names another
// backend than the plugin reports.
var ErrNameMismatch = errors.New("named for another backend")

// nameMismatch is a plugin file e2e-backend-NAMED whose plugin reports
// backend REPORTED.
type nameMismatch struct{ path, named, reported string }

func (e *nameMismatch) Error() string {
	return fmt.Sprintf("refusing to install %s: the file is named for backend %q but the plugin in it is backend %q; "+
		"rename the file to %s%s (or build the plugin to report %q)", e.path, e.named, e.reported, Prefix, e.reported, e.named)
}

func (e *nameMismatch) Unwrap() error { return ErrNameMismatch }

// notPlugin says why path is not an e2e backend plugin.
type notPlugin struct{ path, why string }

func (e *notPlugin) Error() string {
	return fmt.Sprintf("%s is %s (%s)", e.path, ErrNotPlugin, e.why)
}

func (e *notPlugin) Unwrap() error { return ErrNotPlugin }

// looksInstallable refuses, without running it, a file that cannot be a
// plugin: one not named e2e-backend-NAME (so install never starts an
// arbitrary program, such as a system tool), a directory, a file that is not
// an executable program.
func looksInstallable(path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return noSuchFile(path)
	}
	if err != nil {
		return err
	}
	switch {
	case st.IsDir():
		return &notPlugin{path, "it is a directory"}
	case !st.Mode().IsRegular():
		return &notPlugin{path, "it is not a regular file"}
	case !strings.HasPrefix(filepath.Base(path), Prefix) || filepath.Base(path) == Prefix:
		return &notPlugin{path, "plugins are executables named " + Prefix + "NAME"}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if !bytes.HasPrefix(head, []byte("\x7fELF")) && !bytes.HasPrefix(head, []byte("#!")) && !bytes.HasPrefix(head, []byte("MZ")) {
		return &notPlugin{path, "not a program"}
	}
	if st.Mode().Perm()&0o111 == 0 {
		return &notPlugin{path, "not executable, so it cannot be started and asked what it is"}
	}
	return nil
}

// Remove deletes an installed plugin and its manifest entry.
func (h *Host) Remove(name string) error {
	dir := h.dirs.Installed
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	m, err := LoadManifest(dir)
	if err != nil {
		return err
	}
	entry, ok := m.Plugins[name]
	if !ok {
		return fmt.Errorf("backend %q is %w in %s (see `e2e plugin list`)", name, ErrNotInstalled, dir)
	}
	// The manifest names a file e2e copied into dir; anything else is not
	// e2e's to remove.
	if entry.File == "" || filepath.Base(entry.File) != entry.File || strings.HasPrefix(entry.File, ".") {
		return fmt.Errorf("the manifest in %s names %q for backend %q, which is not a file e2e installed there: fix or remove the manifest entry by hand", dir, entry.File, name)
	}
	if err := os.Remove(filepath.Join(dir, entry.File)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	delete(m.Plugins, name)
	return m.save(dir)
}
