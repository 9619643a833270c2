package install

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/e2e-tool/e2e/internal/lastlines"
	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/internal/shell"
	"github.com/e2e-tool/e2e/sdk"
	"github.com/goccy/go-yaml"
)

// RemoteDir is where genconf/serve goes on every node; the generated
// config points bootstrap_url at it.
const RemoteDir = "/opt/dcos_install_tmp"

// DCOS describes one DC/OS installation.
type DCOS struct {
	// InstallerPath is a dcos_generate_config.sh on this machine; genconf
	// runs here. InstallerURL is fetched by master_0, where genconf runs.
	InstallerPath string
	InstallerURL  string
	// BaseConfig is the backend's YAML; ExtraConfig the user's (wins).
	BaseConfig  string
	ExtraConfig []byte
	// IPDetect is the ip-detect script (the user's, or the backend's).
	IPDetect string
	// GenconfDir holds extra files to put beside config.yaml (license,
	// TLS material...); may be empty.
	GenconfDir string
	// StateDir keeps config.yaml as used and one log per node.
	StateDir string
	Events   Events
}

// Config returns the merged config.yaml: base config, then the node lists
// and bootstrap_url, then the user's extra config (which wins).
func Config(base string, nodes []Target, extra []byte) ([]byte, error) {
	merged := map[string]any{}
	if strings.TrimSpace(base) != "" {
		if err := yaml.Unmarshal([]byte(base), &merged); err != nil {
			return nil, fmt.Errorf("the backend's base config is not YAML: %w", err)
		}
	}
	if merged == nil {
		merged = map[string]any{}
	}
	merged["master_list"] = addresses(nodes, sdk.RoleMaster)
	merged["agent_list"] = addresses(nodes, sdk.RoleAgent)
	merged["public_agent_list"] = addresses(nodes, sdk.RolePublicAgent)
	merged["bootstrap_url"] = "file://" + RemoteDir
	if _, ok := merged["cluster_name"]; !ok {
		merged["cluster_name"] = "e2e"
	}
	if len(bytes.TrimSpace(extra)) > 0 {
		user := map[string]any{}
		if err := yaml.Unmarshal(extra, &user); err != nil {
			return nil, fmt.Errorf("--extra-config is not a YAML map: %s", oneLine(yaml.FormatError(err, false, false)))
		}
		for k, v := range user {
			merged[k] = v
		}
	}
	return yaml.Marshal(merged)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (d DCOS) event(step, node, msg string) {
	if d.Events != nil {
		d.Events(step, node, msg)
	}
}

// prepare writes genconf/config.yaml and genconf/ip-detect into dir.
func (d DCOS) prepare(dir string, nodes []Target) ([]byte, error) {
	cfg, err := Config(d.BaseConfig, nodes, d.ExtraConfig)
	if err != nil {
		return nil, err
	}
	genconf := filepath.Join(dir, "genconf")
	if err := os.MkdirAll(genconf, 0o755); err != nil {
		return nil, err
	}
	if d.GenconfDir != "" {
		if err := copyTree(d.GenconfDir, genconf); err != nil {
			return nil, fmt.Errorf("copying --genconf-dir: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(genconf, "config.yaml"), cfg, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(genconf, "ip-detect"), []byte(d.IPDetect), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(d.StateDir, "config.yaml"), cfg, 0o600); err != nil {
		return nil, err
	}
	return cfg, nil
}

// genconfLocal runs the installer's --genconf in dir on this machine.
func (d DCOS) genconfLocal(ctx context.Context, dir string, extraArgs ...string) error {
	logPath := filepath.Join(d.StateDir, "genconf.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	installer, err := filepath.Abs(d.InstallerPath)
	if err != nil {
		return err
	}
	args := append([]string{installer}, extraArgs...)
	// Its own process group, ended on cancellation: the installer's
	// children (docker run in the real genconf) go with it, and one that
	// holds the output cannot hang e2e.
	cmd := proc.Command(ctx, "bash", args...)
	cmd.Dir = dir
	tail := &lastlines.Writer{}
	cmd.Stdout = io.MultiWriter(f, tail)
	cmd.Stderr = cmd.Stdout
	fmt.Fprintf(f, "=== bash %s\n", strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		step := "genconf (" + strings.Join(extraArgs, " ") + ", on this machine)"
		if ctx.Err() != nil {
			return fmt.Errorf("%s: interrupted: %w", step, ctx.Err())
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return &StepError{Step: step, Code: ee.ExitCode(), Tail: tail.Last(5), Log: logPath}
		}
		return &StepError{Step: step, Err: err, Tail: tail.Last(5), Log: logPath}
	}
	return nil
}

// Install runs the advanced installer: genconf once, genconf/serve to every
// node in parallel, dcos_install.sh on all masters in parallel, then on all
// agents and public agents in parallel.
func (d DCOS) Install(ctx context.Context, nodes []Target) error {
	masters := byRole(nodes, sdk.RoleMaster)
	if len(masters) == 0 {
		return ErrNoMaster
	}
	work, err := os.MkdirTemp("", "e2e-genconf-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if _, err := d.prepare(work, nodes); err != nil {
		return err
	}
	serve := filepath.Join(work, "genconf", "serve")
	if d.InstallerPath != "" {
		d.event("genconf", "", "on this machine")
		if err := d.genconfLocal(ctx, work, "--genconf"); err != nil {
			return err
		}
	} else {
		if err := d.genconfOnMaster(ctx, masters[0], work, "--genconf"); err != nil {
			return err
		}
	}
	if err := d.distribute(ctx, nodes, serve); err != nil {
		return err
	}
	installOn := func(ctx context.Context, n Target) error {
		d.event("dcos_install.sh", n.ID(), dcosRole(n.Role()))
		return runLogged(ctx, n, d.StateDir, "dcos_install.sh "+dcosRole(n.Role()),
			"cd "+RemoteDir+" && bash dcos_install.sh --no-block-dcos-setup "+dcosRole(n.Role()), nil)
	}
	d.event("install masters", "", "")
	if err := parallel(ctx, masters, installOn); err != nil {
		return err
	}
	d.event("install agents", "", "")
	return parallel(ctx, byRole(nodes, sdk.RoleAgent, sdk.RolePublicAgent), installOn)
}

// distribute replaces RemoteDir on every node, in parallel, with serve.
func (d DCOS) distribute(ctx context.Context, nodes []Target, serve string) error {
	d.event("send the installer to every node", "", "")
	return parallel(ctx, nodes, func(ctx context.Context, n Target) error {
		if err := runLogged(ctx, n, d.StateDir, "clear "+RemoteDir, replaceOwnedDir(RemoteDir), nil); err != nil {
			return err
		}
		if err := n.Upload(ctx, serve, RemoteDir); err != nil {
			return &StepError{Node: n.ID(), Step: "copy genconf/serve", Err: err}
		}
		d.event("send the installer to every node", n.ID(), "done")
		return nil
	})
}

// genconfOnMaster fetches the installer on master_0 and runs genconf there
// (DC/OS nodes have Docker, which the real installer needs); serve/ comes
// back to work so it can go to the other nodes.
func (d DCOS) genconfOnMaster(ctx context.Context, m Target, work string, args ...string) error {
	const remote = "/opt/dcos_genconf"
	d.event("download the installer", m.ID(), d.InstallerURL)
	if err := runLogged(ctx, m, d.StateDir, "prepare "+remote, replaceOwnedDir(remote), nil); err != nil {
		return err
	}
	if err := m.Upload(ctx, filepath.Join(work, "genconf"), remote+"/genconf"); err != nil {
		return &StepError{Node: m.ID(), Step: "copy genconf", Err: err}
	}
	if err := runLogged(ctx, m, d.StateDir, "download the installer",
		"curl -fsSL --retry 3 -o "+remote+"/dcos_generate_config.sh "+shell.Quote(d.InstallerURL), nil); err != nil {
		return err
	}
	d.event("genconf", m.ID(), "on "+m.ID())
	if err := runLogged(ctx, m, d.StateDir, "genconf ("+strings.Join(args, " ")+", on "+m.ID()+")",
		"cd "+remote+" && bash dcos_generate_config.sh "+shell.Quote(args...), nil); err != nil {
		return err
	}
	if err := m.Download(ctx, remote+"/genconf/serve", filepath.Join(work, "genconf", "serve")); err != nil {
		return &StepError{Node: m.ID(), Step: "fetch genconf/serve", Err: err}
	}
	return nil
}

// Upgrade generates the node upgrade script for the current version and
// runs it on masters one at a time, then on agents.
func (d DCOS) Upgrade(ctx context.Context, nodes []Target, current string) error {
	masters := byRole(nodes, sdk.RoleMaster)
	if len(masters) == 0 {
		return ErrNoMaster
	}
	work, err := os.MkdirTemp("", "e2e-upgrade-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if _, err := d.prepare(work, nodes); err != nil {
		return err
	}
	d.event("genconf", "", "node upgrade script for "+current)
	if d.InstallerPath != "" {
		err = d.genconfLocal(ctx, work, "--generate-node-upgrade-script", current)
	} else {
		// As for a URL install, master_0 downloads the installer and
		// generates the script.
		err = d.genconfOnMaster(ctx, masters[0], work, "--generate-node-upgrade-script", current)
	}
	if err != nil {
		return err
	}
	scripts, _ := filepath.Glob(filepath.Join(work, "genconf", "serve", "upgrade", "*", "dcos_node_upgrade.sh"))
	if len(scripts) != 1 {
		return fmt.Errorf("the installer wrote %d node upgrade scripts under genconf/serve/upgrade, want 1", len(scripts))
	}
	rel, _ := filepath.Rel(filepath.Join(work, "genconf", "serve"), scripts[0])
	if err := d.distribute(ctx, nodes, filepath.Join(work, "genconf", "serve")); err != nil {
		return err
	}
	upgrade := func(ctx context.Context, n Target) error {
		d.event("upgrade", n.ID(), "")
		return runLogged(ctx, n, d.StateDir, "dcos_node_upgrade.sh", "cd "+RemoteDir+" && bash "+shell.Quote(rel), nil)
	}
	for _, m := range byRole(nodes, sdk.RoleMaster) {
		if err := upgrade(ctx, m); err != nil {
			return err
		}
	}
	return parallel(ctx, byRole(nodes, sdk.RoleAgent, sdk.RolePublicAgent), upgrade)
}

// Variant reads the installer's --version JSON, as DC/OS E2E did:
// "enterprise" when its variant is "ee", else "oss".
func Variant(ctx context.Context, installer string) (version, variant string, err error) {
	out, err := proc.Command(ctx, "bash", installer, "--version").Output()
	if err != nil {
		return "", "", fmt.Errorf("%s --version: %w", installer, err)
	}
	var v struct {
		Version string `json:"version"`
		Variant string `json:"variant"`
	}
	if err := json.Unmarshal(lastJSON(out), &v); err != nil {
		return "", "", fmt.Errorf("%s --version did not print JSON: %w", installer, err)
	}
	if v.Variant == "ee" {
		return v.Version, "enterprise", nil
	}
	return v.Version, "oss", nil
}

// lastJSON returns the JSON object the installer printed (it may log
// before it).
func lastJSON(out []byte) []byte {
	if i := bytes.IndexByte(out, '{'); i >= 0 {
		return out[i:]
	}
	return out
}

// ownedDir is a command (run with sudo) that makes dir, owned by the login
// user, so that files can be sent into it as that user: cloud images log
// in as admin or ec2-user, not root.
func ownedDir(dir string) string {
	return "mkdir -p " + dir + ` && chown "${SUDO_USER:-$(id -un)}" ` + dir
}

// OwnerMarker is the file e2e writes into each directory it makes on a node
// for an installation; only a directory holding it is ever removed, so a
// directory of the same name that a user (or an earlier DC/OS) made
// survives.
const OwnerMarker = ".e2e-owned"

// replaceOwnedDir is the shell that empties dir for a new installation: a
// dir that exists without OwnerMarker is refused (exit 3, one line naming
// it and what to do); otherwise it is removed, made again, owned by the
// login user, and marked.
func replaceOwnedDir(dir string) string {
	q := shell.Quote(dir)
	m := shell.Quote(dir + "/" + OwnerMarker)
	return "if [ -e " + q + " ] && [ ! -e " + m + " ]; then echo " +
		shell.Quote(dir+" exists and e2e did not make it (no "+OwnerMarker+"): move it away, then install again") +
		" >&2; exit 3; fi; rm -rf " + q + " && " + ownedDir(q) + " && touch " + m
}

func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
}
