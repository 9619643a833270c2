package plugin

import (
	"bytes"
	"context"
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
	File        string    `json:"file"`
	SHA256      string    `json:"sha256"`
	Version     string    `json:"version"`
	Protocol    int       `json:"protocol"`
	Source      string    `json:"source"`
	InstalledAt time.Time `json:"installed_at"`
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

// Install starts the executable at src, asks it who it is, and only then
// copies it into the data dir and records its sha256. A file that is not
// an e2e backend plugin is refused with an error wrapping ErrNotPlugin.
func (h *Host) Install(ctx context.Context, src string, force bool) (ManifestEntry, string, error) {
	abs, err := filepath.Abs(src)
	if err != nil {
		return ManifestEntry{}, "", err
	}
	if err := looksInstallable(abs); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ManifestEntry{}, "", err
		}
		return ManifestEntry{}, "", fmt.Errorf("refusing to install %s: %w", src, err)
	}
	p, err := h.Launch(ctx, Candidate{Name: filepath.Base(abs), Path: abs, Source: "install"})
	if err != nil {
		return ManifestEntry{}, "", fmt.Errorf("refusing to install %s: %w", src, err)
	}
	desc := p.Desc
	p.Kill()
	// Discovery goes by file name: a file named for another backend than
	// the one it reports would be found, and used, under the wrong name.
	if named := strings.TrimPrefix(filepath.Base(abs), Prefix); named != desc.Name {
		return ManifestEntry{}, "", &nameMismatch{path: src, named: named, reported: desc.Name}
	}

	dir := h.dirs.Installed
	unlock, err := lockDir(dir)
	if err != nil {
		return ManifestEntry{}, "", err
	}
	defer unlock()
	m, err := LoadManifest(dir)
	if err != nil {
		return ManifestEntry{}, "", err
	}
	if old, ok := m.Plugins[desc.Name]; ok && !force {
		return ManifestEntry{}, "", fmt.Errorf("backend %q is %w (version %s): use --force to replace it", desc.Name, ErrAlreadyInstalled, old.Version)
	}
	file := Prefix + desc.Name
	dst := filepath.Join(dir, file)
	if err := copyExecutable(abs, dst); err != nil {
		return ManifestEntry{}, "", fmt.Errorf("installing %s: %w", src, err)
	}
	sum, err := FileSHA256(dst)
	if err != nil {
		return ManifestEntry{}, "", err
	}
	entry := ManifestEntry{File: file, SHA256: sum, Version: desc.Version, Protocol: desc.Protocol,
		Source: abs, InstalledAt: time.Now().UTC()}
	m.Plugins[desc.Name] = entry
	if err := m.save(dir); err != nil {
		return ManifestEntry{}, "", err
	}
	return entry, desc.Name, nil
}

// copyExecutable copies to a temporary name beside dst and renames, so a
// running e2e never sees a half-written plugin.
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".install-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
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
