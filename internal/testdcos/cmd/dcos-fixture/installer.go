package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/internal/testdcos/internal/layout"
)

// Paths relative to the directory the installer runs in, as the real one.
const (
	genconfDir = "genconf"
	configPath = "genconf/config.yaml"
	serveDir   = "genconf/serve"
)

// installerArgs is what the real installer's argument parser accepts: one
// mode (default --genconf) and -v.
type installerArgs struct {
	mode           string // genconf, version, generate-node-upgrade-script
	fromVersion    string
	fromVersionSet bool
	verbose        bool
}

func parseInstallerArgs(args []string) (installerArgs, error) {
	a := installerArgs{}
	setMode := func(m string) error {
		if a.mode != "" && a.mode != m {
			return fmt.Errorf("argument --%s: not allowed with argument --%s", m, a.mode)
		}
		a.mode = m
		return nil
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		var err error
		switch arg {
		case "-v", "--verbose":
			a.verbose = true
		case "--genconf", "--version":
			err = setMode(strings.TrimPrefix(arg, "--"))
		case "--generate-node-upgrade-script":
			err = setMode("generate-node-upgrade-script")
			// Its version argument is optional to the parser (nargs='?' in
			// the real one), and its absence is reported by the mode.
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				a.fromVersion, a.fromVersionSet = args[i], true
			}
		case "--web", "--aws-cloudformation", "--hash-password":
			err = setMode(strings.TrimPrefix(arg, "--"))
		case "-p", "--port":
			// Accepted and ignored, as the real one ignores it outside --web.
			if i+1 >= len(args) {
				return a, fmt.Errorf("argument %s: expected one argument", arg)
			}
			i++
		case "-h", "--help":
			return a, flag.ErrHelp
		default:
			return a, fmt.Errorf("unrecognized arguments: %s", strings.Join(args[i:], " "))
		}
		if err != nil {
			return a, err
		}
	}
	if a.mode == "" {
		a.mode = "genconf"
	}
	return a, nil
}

const installerUsage = `usage: dcos_generate_config.sh [-h] [--genconf | --version | --generate-node-upgrade-script [installed_cluster_version]] [-v]

DC/OS Install and Configuration Utility (e2e contract fixture)

  --genconf             Create DC/OS install files customized according to genconf/config.yaml.
  --version             Print the DC/OS version
  --generate-node-upgrade-script [installed_cluster_version]
                        Generate a script that upgrades DC/OS nodes running installed_cluster_version
  -v, --verbose         Verbose log output (DEBUG).
`

func runInstaller(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("installer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("installer-dir", "", "directory the installer's payload was unpacked into")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	a, err := parseInstallerArgs(fs.Args())
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, installerUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%sdcos_generate_config.sh: error: %v\n", installerUsage, err)
		return 2
	}
	m, err := readManifest(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "dcos_generate_config.sh: %v\n", err)
		return 1
	}
	in := &installer{m: m, dir: *dir, stdout: stdout, stderr: stderr, verbose: a.verbose}
	switch a.mode {
	case "version":
		return in.version()
	case "genconf":
		in.header("EXECUTING CONFIGURATION GENERATION")
		return in.genconf(ctx, "")
	case "generate-node-upgrade-script":
		if !a.fromVersionSet || a.fromVersion == "" {
			in.logf("Must provide the version of the cluster upgrading from")
			return 1
		}
		return in.genconf(ctx, a.fromVersion)
	case "web":
		in.logf("The DC/OS web installer (--web) has been removed.")
		return 1
	default:
		in.logf("--%s is not supported by the DC/OS contract fixture", a.mode)
		return 1
	}
}

func readManifest(dir string) (layout.Manifest, error) {
	var m layout.Manifest
	b, err := os.ReadFile(filepath.Join(dir, "fixture.json"))
	if err != nil {
		return m, fmt.Errorf("installer payload is incomplete: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("installer payload is corrupt: fixture.json: %w", err)
	}
	return m, nil
}

type installer struct {
	m       layout.Manifest
	dir     string
	stdout  io.Writer
	stderr  io.Writer
	verbose bool
}

// logf and debugf log to stderr as the real installer does (one message a
// line, no prefixes); stdout carries only results.
func (in *installer) logf(format string, args ...any) {
	fmt.Fprintf(in.stderr, format+"\n", args...)
}

func (in *installer) debugf(format string, args ...any) {
	if in.verbose {
		in.logf(format, args...)
	}
}

func (in *installer) header(s string) { in.logf("====> %s", s) }

func (in *installer) version() int {
	b, _ := json.MarshalIndent(map[string]string{
		"version": in.m.Version,
		"variant": in.m.InstallerVariant(),
	}, "", "  ")
	fmt.Fprintf(in.stdout, "%s\n", b)
	return 0
}

// genconf validates genconf/config.yaml and genconf/ip-detect, then writes
// genconf/serve; with fromVersion set it also writes a node upgrade script.
// Nothing is written under genconf/serve unless validation passed.
func (in *installer) genconf(ctx context.Context, fromVersion string) int {
	in.debugf("Logger set to DEBUG")
	raw, cfg, msg := loadConfig(configPath)
	if msg != "" {
		in.logf("%s", msg)
		return 1
	}
	in.logf("Generating configuration files...")
	nc, ipDetect, problems := validateConfig(cfg, in.m)
	if len(problems) > 0 {
		for _, p := range problems.sorted() {
			in.logf("%s: %s", p[0], p[1])
		}
		return 1
	}
	if b, err := json.Marshal(nc); err == nil {
		in.debugf("Final arguments: %s", b)
	}
	if err := ctx.Err(); err != nil {
		in.logf("%v", err)
		return 1
	}
	w := serveWriter{in: in, raw: raw, nc: nc, ipDetect: ipDetect, now: time.Now().UTC()}
	if err := w.write(); err != nil {
		in.logf("Failed to write %s: %v", serveDir, err)
		return 1
	}
	if fromVersion == "" {
		in.logf("Package filename: bootstrap/%s", in.m.BootstrapFile())
		in.logf("Generating Bash configuration files for DC/OS")
		return 0
	}
	url, err := w.writeUpgradeScript(fromVersion)
	if err != nil {
		in.logf("Failed to write the node upgrade script: %v", err)
		return 1
	}
	// DC/OS E2E takes the last word of stdout as the script's location.
	fmt.Fprintf(in.stdout, "Node upgrade script URL: %s\n", url)
	return 0
}

type serveWriter struct {
	in       *installer
	raw      []byte
	nc       layout.NodeConfig
	ipDetect []byte
	now      time.Time
}

func (w serveWriter) write() error {
	m := w.in.m
	if err := os.MkdirAll(filepath.Join(serveDir, "bootstrap"), 0o755); err != nil {
		return err
	}
	src := filepath.Join(w.in.dir, "bootstrap", m.BootstrapFile())
	dst := filepath.Join(serveDir, "bootstrap", m.BootstrapFile())
	w.in.debugf("Copying bootstrap payload %s", dst)
	if err := linkOrCopy(src, dst); err != nil {
		return err
	}
	active, _ := json.Marshal([]string{"dcos-fixture--" + m.BootstrapID, "dcos-fixture-payload--" + m.BootstrapID})
	script, err := renderScript("dcos_install.sh.tmpl", w.scriptData(""))
	if err != nil {
		return err
	}
	packages, _ := json.MarshalIndent(map[string]map[string]string{
		"dcos-fixture": {"id": "dcos-fixture--" + m.BootstrapID, "filename": "bootstrap/" + m.BootstrapFile()},
	}, "", "  ")
	files := []struct {
		path string
		mode os.FileMode
		data []byte
	}{
		{filepath.Join(serveDir, "bootstrap", m.BootstrapID+".active.json"), 0o644, active},
		{filepath.Join(serveDir, "bootstrap.latest"), 0o644, []byte(m.BootstrapID)},
		{filepath.Join(serveDir, "dcos_install.sh"), 0o755, script},
		{filepath.Join(serveDir, "config.yaml.seen"), 0o644, w.raw},
		{filepath.Join(genconfDir, "cluster_packages.json"), 0o644, append(packages, '\n')},
	}
	for _, f := range files {
		w.in.debugf("Writing %s", f.path)
		if err := writeFileAtomic(f.path, f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// writeUpgradeScript writes serve/upgrade/<id>/dcos_node_upgrade.sh and
// returns its URL under bootstrap_url, as the real installer prints it.
func (w serveWriter) writeUpgradeScript(fromVersion string) (string, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	rel := "upgrade/" + hex.EncodeToString(id) + "/dcos_node_upgrade.sh"
	script, err := renderScript("dcos_node_upgrade.sh.tmpl", w.scriptData(fromVersion))
	if err != nil {
		return "", err
	}
	path := filepath.Join(serveDir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if err := writeFileAtomic(path, script, 0o755); err != nil {
		return "", err
	}
	return w.nc.BootstrapURL + "/" + rel, nil
}

// linkOrCopy hard-links src to dst (the unpacked installer sits next to
// genconf/, so this is the usual case and costs nothing) or copies it.
func linkOrCopy(src, dst string) error {
	tmp := dst + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Link(src, tmp); err != nil {
		if err := copyFile(src, tmp); err != nil {
			_ = os.Remove(tmp)
			return err
		}
	}
	return os.Rename(tmp, dst)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// writeFileAtomic writes via a temporary name and a rename, so a reader
// (or an interrupted run) never sees half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
