package cluster

import (
	"context"
	"errors"
	"io/fs"
	"sync"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/sdk"
)

// PluginInfo describes one plugin executable found during discovery.
type PluginInfo struct {
	Name     string `json:"name"`
	Version  string `json:"version,omitempty"`
	Protocol int    `json:"protocol,omitempty"`
	Path     string `json:"path"`
	SHA256   string `json:"sha256"`
	// Source is where it was found: "--plugin-dir", "E2E_PLUGIN_PATH",
	// "installed", "beside e2e" or "PATH".
	Source string `json:"source"`
	// Used is false when an earlier candidate of the same name wins.
	Used bool `json:"used"`
	// Error says why the plugin could not be described, if it could not.
	Error string `json:"error,omitempty"`
}

// Plugins lists every plugin candidate, started in parallel to ask each
// for its version.
func (m *Manager) Plugins(ctx context.Context) ([]PluginInfo, error) {
	cands, err := m.host.Discover()
	if err != nil {
		return nil, err
	}
	out := make([]PluginInfo, len(cands))
	var wg sync.WaitGroup
	for i, c := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			info := PluginInfo{Name: c.Name, Path: c.Path, Source: string(c.Source), Used: c.Used}
			// Hash while the plugin starts: both take tens of milliseconds.
			hashed := make(chan struct{})
			go func() {
				defer close(hashed)
				if sum, err := plugin.FileSHA256(c.Path); err == nil {
					info.SHA256 = sum
				}
			}()
			p, err := m.host.Launch(ctx, c)
			<-hashed
			if err != nil {
				info.Error = err.Error()
			} else {
				info.Version, info.Protocol = p.Desc.Version, p.Desc.Protocol
				p.Kill()
			}
			out[i] = info
		}()
	}
	wg.Wait()
	return out, nil
}

// BackendInfo is what a plugin says of itself.
type BackendInfo struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Protocol int    `json:"protocol"`
	Summary  string `json:"summary,omitempty"`
	Path     string `json:"path"`
	Source   string `json:"source"`

	Capabilities struct {
		Destroy        bool            `json:"destroy"`
		InstallMethods []InstallMethod `json:"install_methods"`
		TracksClusters bool            `json:"tracks_clusters"`
		Exec           bool            `json:"exec"`
		VerifySSH      bool            `json:"verify_ssh"`
		Clean          bool            `json:"clean"`
		// StartStop: e2e stop and e2e start work (Manager.Stop, Start).
		StartStop bool `json:"start_stop"`
		// NodeLogs: the backend adds its own view of each node to a logs
		// bundle (Cluster.CollectLogs).
		NodeLogs bool `json:"node_logs"`
		// Doctor: the backend has checks of its own (Manager.Doctor).
		Doctor bool `json:"doctor"`
	} `json:"capabilities"`
	Options []OptionInfo `json:"options"`
}

// OptionInfo describes one backend option.
type OptionInfo struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Default  any    `json:"default,omitempty"`
	Required bool   `json:"required"`
	Secret   bool   `json:"secret"`
	Env      string `json:"env,omitempty"`
	Help     string `json:"help"`
}

// Backend starts a backend's plugin and returns its description.
func (m *Manager) Backend(ctx context.Context, name string) (BackendInfo, error) {
	p, err := m.open(ctx, name)
	if err != nil {
		return BackendInfo{}, err
	}
	defer p.Kill()
	return describe(p), nil
}

func describe(p *plugin.Plugin) BackendInfo {
	d := p.Desc
	info := BackendInfo{Name: d.Name, Version: d.Version, Commit: d.Commit, Protocol: d.Protocol,
		Summary: d.Summary, Path: p.Path, Source: string(p.Source)}
	info.Capabilities.Destroy = d.Calls.Destroy
	info.Capabilities.TracksClusters = d.Calls.List
	info.Capabilities.Exec = d.Calls.Exec
	info.Capabilities.VerifySSH = d.NodesRunSSHD
	info.Capabilities.Clean = d.Calls.Clean
	info.Capabilities.StartStop = d.Calls.StartStop
	info.Capabilities.NodeLogs = d.Calls.NodeLogs
	info.Capabilities.Doctor = d.Calls.Doctor
	info.Capabilities.InstallMethods = append([]InstallMethod{}, d.InstallMethods...)
	info.Options = []OptionInfo{}
	for _, o := range d.Options {
		info.Options = append(info.Options, OptionInfo{Name: o.Name, Type: string(o.Type), Default: o.Default,
			Required: o.Required, Secret: o.Secret, Env: o.Env, Help: o.Help})
	}
	return info
}

// PluginInstallOptions say where InstallPlugin finds a plugin and how it
// checks it.
type PluginInstallOptions struct {
	// Force replaces an installed plugin of the same name; the old one
	// stays usable until the new one is verified.
	Force bool
	// Checksums is the SHA256SUMS file or URL a release archive is checked
	// against; empty means the SHA256SUMS beside the archive.
	Checksums string
	// Mirror is the directory or URL that NAME@VERSION is looked up in
	// (NAME/VERSION/e2e-backend-NAME_VERSION_OS_ARCH.tar.gz beside
	// NAME/VERSION/SHA256SUMS); empty means $E2E_PLUGIN_MIRROR.
	Mirror string
}

// InstallPlugin installs a plugin for the current user: source is a plugin
// executable (e2e-backend-NAME), a release archive (a local .tar.gz, or an
// https URL) checked against its SHA256SUMS, or NAME@VERSION from the
// mirror. The plugin must answer the plugin handshake before it replaces
// anything. Bad input (no such file, a refused archive or checksum, a file
// that is no plugin, a plugin installed already without Force) is an
// *InvalidError.
func (m *Manager) InstallPlugin(ctx context.Context, source string, opts PluginInstallOptions) (BackendInfo, error) {
	entry, name, err := m.host.Install(ctx, source, plugin.InstallOptions{Force: opts.Force, Checksums: opts.Checksums, Mirror: opts.Mirror})
	for _, invalid := range []error{plugin.ErrAlreadyInstalled, plugin.ErrNotPlugin, plugin.ErrNameMismatch,
		plugin.ErrBadArchive, plugin.ErrBadSource, fs.ErrNotExist} {
		if errors.Is(err, invalid) {
			return BackendInfo{}, &InvalidError{Err: err}
		}
	}
	if err != nil {
		return BackendInfo{}, err
	}
	info := BackendInfo{Name: name, Version: entry.Version, Protocol: entry.Protocol, Source: string(plugin.SourceInstalled)}
	info.Path = m.host.Dirs().Installed + "/" + entry.File
	return info, nil
}

// RemovePlugin removes an installed plugin.
func (m *Manager) RemovePlugin(name string) error {
	err := m.host.Remove(name)
	if errors.Is(err, plugin.ErrNotInstalled) {
		return &InvalidError{Err: err}
	}
	return err
}

// PluginDirs says where plugins are looked for, in discovery order:
// --plugin-dir (Options.PluginDirs), $E2E_PLUGIN_PATH, the installed
// plugins, beside the running executable, then $PATH.
func (m *Manager) PluginDirs() string { return m.host.Dirs().String() }

// ProtocolVersion is the backend protocol major this e2e speaks.
const ProtocolVersion = sdk.ProtocolVersion

// usedPlugins returns the plugin discovery uses for each backend name (the
// first found of each), or, when backend is not empty, only that backend's
// (an InvalidError when there is none).
func (m *Manager) usedPlugins(backend string) ([]plugin.Candidate, error) {
	if backend != "" {
		c, err := plugin.Find(m.host.Dirs(), backend)
		if err != nil {
			return nil, &InvalidError{Err: err}
		}
		return []plugin.Candidate{c}, nil
	}
	all, err := m.host.Discover()
	if err != nil {
		return nil, err
	}
	var used []plugin.Candidate
	for _, c := range all {
		if c.Used {
			used = append(used, c)
		}
	}
	return used, nil
}
