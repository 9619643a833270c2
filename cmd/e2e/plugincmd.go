package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/e2e-tool/e2e/cluster"
)

// PluginCmd groups the plugin commands.
type PluginCmd struct {
	List    PluginListCmd    `cmd:"" help:"List every plugin found, in discovery order, and which one is used."`
	Info    PluginInfoCmd    `cmd:"" help:"Show a backend's capabilities and options."`
	Install PluginInstallCmd `cmd:"" help:"Install a plugin for this user from its executable, a release archive or NAME@VERSION (checked, then pinned by sha256)."`
	Remove  PluginRemoveCmd  `cmd:"" help:"Remove an installed plugin."`
}

// PluginListCmd lists plugins.
type PluginListCmd struct {
	JSON bool `help:"Print JSON."`
}

func (c *PluginListCmd) Run(e *env) error {
	infos, err := e.manager.Plugins(e.ctx)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(e, infos)
	}
	if len(infos) == 0 {
		e.say("no plugins found (looked in %s)", e.manager.PluginDirs())
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tPROTOCOL\tSOURCE\tUSED\tSHA256\tPATH")
	for _, p := range infos {
		ver, proto := p.Version, fmt.Sprint(p.Protocol)
		if p.Error != "" {
			ver, proto = "error", "-"
		}
		used := "yes"
		if !p.Used {
			used = "shadowed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, ver, proto, p.Source, used, short(p.SHA256), p.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range infos {
		if p.Error != "" {
			e.say("e2e: plugin %s: %s", p.Path, p.Error)
		}
	}
	return nil
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// PluginInfoCmd describes a backend.
type PluginInfoCmd struct {
	Name string `arg:"" help:"Backend name."`
	JSON bool   `help:"Print JSON."`
}

func (c *PluginInfoCmd) Run(e *env) error {
	info, err := e.manager.Backend(e.ctx, c.Name)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(e, info)
	}
	w := e.stdout
	fmt.Fprintf(w, "%s %s (protocol %d)\n", info.Name, info.Version, info.Protocol)
	if info.Summary != "" {
		fmt.Fprintf(w, "  %s\n", info.Summary)
	}
	fmt.Fprintf(w, "path: %s (%s)\n", info.Path, info.Source)
	names := make([]string, 0, len(info.Capabilities.InstallMethods))
	for _, m := range info.Capabilities.InstallMethods {
		names = append(names, string(m))
	}
	methods := strings.Join(names, ", ")
	if methods == "" {
		methods = "none"
	}
	fmt.Fprintf(w, "capabilities: destroy=%v install=%s tracks-clusters=%v exec=%v verify-ssh=%v clean=%v start-stop=%v node-logs=%v doctor=%v\n",
		info.Capabilities.Destroy, methods, info.Capabilities.TracksClusters, info.Capabilities.Exec,
		info.Capabilities.VerifySSH, info.Capabilities.Clean, info.Capabilities.StartStop, info.Capabilities.NodeLogs, info.Capabilities.Doctor)
	if len(info.Options) == 0 {
		fmt.Fprintln(w, "options: none")
		return nil
	}
	fmt.Fprintln(w, "options (give them with -o name=value or under options: in --config):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tTYPE\tDEFAULT\tREQUIRED\tSECRET\tHELP")
	for _, o := range info.Options {
		def := "-"
		if o.Default != nil {
			b, _ := json.Marshal(o.Default)
			def = string(b)
		}
		secret := "no"
		if o.Secret {
			secret = "yes, from $" + o.Env
		}
		help := o.Help
		if o.Env != "" && !o.Secret {
			help += " (or $" + o.Env + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", o.Name, o.Type, def, yesNo(o.Required), secret, help)
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// PluginInstallCmd installs a plugin.
type PluginInstallCmd struct {
	Source    string `arg:"" placeholder:"PATH|URL|NAME@VERSION" help:"A plugin executable (e2e-backend-NAME), a release archive (FILE.tar.gz, or its https URL) with a SHA256SUMS beside it, or NAME@VERSION from --mirror."`
	Force     bool   `help:"Replace an installed plugin of the same name (the old one stays until the new one is verified)."`
	Checksums string `placeholder:"FILE|URL" help:"The SHA256SUMS list to check a release archive against (default: the SHA256SUMS beside the archive)."`
	Mirror    string `placeholder:"DIR|URL" help:"Where NAME@VERSION is found: NAME/VERSION/e2e-backend-NAME_VERSION_OS_ARCH.tar.gz and NAME/VERSION/SHA256SUMS (default $E2E_PLUGIN_MIRROR)."`
}

func (c *PluginInstallCmd) Run(e *env) error {
	info, err := e.manager.InstallPlugin(e.ctx, c.Source, cluster.PluginInstallOptions{Force: c.Force, Checksums: c.Checksums, Mirror: c.Mirror})
	if err != nil {
		return err
	}
	e.say("installed %s %s (protocol %d) as %s", info.Name, info.Version, info.Protocol, info.Path)
	fmt.Fprintln(e.stdout, info.Name)
	return nil
}

// PluginRemoveCmd removes an installed plugin.
type PluginRemoveCmd struct {
	Name string `arg:"" help:"Backend name."`
}

func (c *PluginRemoveCmd) Run(e *env) error {
	if err := e.manager.RemovePlugin(c.Name); err != nil {
		return err
	}
	e.say("removed %s", c.Name)
	return nil
}
