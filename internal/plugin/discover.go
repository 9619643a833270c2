// Package plugin finds backend plugins, installs them, and runs them with
// hashicorp/go-plugin: gRPC only, AutoMTLS, managed clients, negotiated
// protocol version, and sha256 pinning for installed plugins.
package plugin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Prefix is the start of every backend plugin's executable name.
const Prefix = "e2e-backend-"

// PathEnv lists extra plugin directories, colon-separated.
const PathEnv = "E2E_PLUGIN_PATH"

// Source says where a plugin was found.
type Source string

// Sources, in discovery order.
const (
	SourceFlag      Source = "--plugin-dir"
	SourceEnv       Source = PathEnv
	SourceInstalled Source = "installed"
	SourceBesideE2E Source = "beside e2e"
	SourcePath      Source = "PATH"
)

// Dirs are the places plugins are looked for, in order.
type Dirs struct {
	Flag      []string
	Env       []string
	Installed string
	// BesideE2E is the directory of the running executable: of e2e, so
	// that `make build` then ./bin/e2e works; of a test binary when the Go
	// API runs under go test, where PATH is what finds the user's plugins.
	BesideE2E string
	// Path are the absolute directories of $PATH, as a shell finds
	// commands (relative entries are skipped, as os/exec's LookPath
	// refuses them).
	Path []string
}

// DefaultDirs returns the discovery order, first hit wins: --plugin-dir
// (flagDirs), $E2E_PLUGIN_PATH, the installed plugins in the user's data
// dir, the directory of the running executable, then $PATH.
func DefaultDirs(flagDirs []string) (Dirs, error) {
	d := Dirs{Flag: flagDirs}
	for _, p := range filepath.SplitList(os.Getenv(PathEnv)) {
		if p != "" {
			d.Env = append(d.Env, p)
		}
	}
	data, err := DataDir()
	if err != nil {
		return Dirs{}, err
	}
	d.Installed = data
	if exe, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		d.BesideE2E = filepath.Dir(exe)
	}
	for _, p := range filepath.SplitList(os.Getenv("PATH")) {
		if filepath.IsAbs(p) {
			d.Path = append(d.Path, p)
		}
	}
	return d, nil
}

// String lists where plugins are looked for, in order, for messages that
// say where a plugin was not found.
func (d Dirs) String() string {
	list := func(dirs []string) string {
		if len(dirs) == 0 {
			return "none"
		}
		return strings.Join(dirs, ":")
	}
	var parts []string
	if len(d.Flag) > 0 {
		parts = append(parts, "--plugin-dir "+list(d.Flag))
	}
	parts = append(parts, "$"+PathEnv+" "+list(d.Env))
	if d.Installed != "" {
		parts = append(parts, "installed "+d.Installed)
	}
	if d.BesideE2E != "" {
		parts = append(parts, "beside e2e "+d.BesideE2E)
	}
	parts = append(parts, "$PATH "+list(d.Path))
	return strings.Join(parts, ", ")
}

// DataDir is where `e2e plugin install` puts plugins:
// $XDG_DATA_HOME/e2e/plugins, by default ~/.local/share/e2e/plugins.
func DataDir() (string, error) {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the plugin directory: set XDG_DATA_HOME or HOME: %w", err)
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "e2e", "plugins"), nil
}

// Candidate is one plugin executable found during discovery.
type Candidate struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Source Source `json:"source"`
	// SHA256 is the checksum recorded at install time (installed plugins).
	SHA256 string `json:"sha256,omitempty"`
	// Used is true for the candidate that wins for its name.
	Used bool `json:"used"`
	// Problem says why the candidate cannot be used, if it cannot.
	Problem string `json:"problem,omitempty"`
}

// Discover lists every candidate in discovery order; the first of each name
// is marked Used.
func Discover(d Dirs) ([]Candidate, error) {
	manifest, err := LoadManifest(d.Installed)
	if err != nil {
		return nil, err
	}
	var out []Candidate
	seenDir := map[string]bool{}
	scan := func(dir string, src Source) {
		if dir == "" {
			return
		}
		abs, err := filepath.Abs(dir)
		if err != nil || seenDir[abs] {
			return
		}
		seenDir[abs] = true
		entries, err := os.ReadDir(abs)
		if err != nil {
			return
		}
		for _, e := range entries {
			name, ok := strings.CutPrefix(e.Name(), Prefix)
			if !ok || name == "" || e.IsDir() {
				continue
			}
			c := Candidate{Name: name, Path: filepath.Join(abs, e.Name()), Source: src}
			if src == SourceInstalled {
				if entry, ok := manifest.Plugins[name]; ok && entry.File == e.Name() {
					c.SHA256 = entry.SHA256
				} else {
					c.Problem = "not in the manifest of installed plugins: install it with `e2e plugin install PATH`"
				}
			}
			out = append(out, c)
		}
	}
	for _, dir := range d.Flag {
		scan(dir, SourceFlag)
	}
	for _, dir := range d.Env {
		scan(dir, SourceEnv)
	}
	scan(d.Installed, SourceInstalled)
	scan(d.BesideE2E, SourceBesideE2E)
	for _, dir := range d.Path {
		scan(dir, SourcePath)
	}

	used := map[string]bool{}
	for i := range out {
		if !used[out[i].Name] {
			used[out[i].Name] = true
			out[i].Used = true
		}
	}
	return out, nil
}

// ErrNoSuchBackend is wrapped by Find when no plugin has the name.
var ErrNoSuchBackend = errors.New("no such backend")

// Find returns the candidate used for a backend name.
func Find(d Dirs, name string) (Candidate, error) {
	cands, err := Discover(d)
	if err != nil {
		return Candidate{}, err
	}
	var names []string
	for _, c := range cands {
		if c.Used {
			if c.Name == name {
				return c, nil
			}
			names = append(names, c.Name)
		}
	}
	sort.Strings(names)
	avail := "none"
	if len(names) > 0 {
		avail = strings.Join(names, ", ")
	}
	return Candidate{}, fmt.Errorf("%w %q: no %s%s in %s (available: %s; see `e2e plugin list`)", ErrNoSuchBackend, name, Prefix, name, d, avail)
}
