// Package testdcos builds a stand-in for DC/OS's advanced installer,
// dcos_generate_config.sh, for tests: real installers cannot be downloaded
// here. The stand-in honours the installer's contract (--version JSON,
// --genconf validating genconf/config.yaml and genconf/ip-detect and writing
// genconf/serve, --generate-node-upgrade-script) and its dcos_install.sh
// installs, on a systemd node, a small static Go program that answers the
// endpoints a DC/OS readiness wait polls. Only tests and benchmarks use
// it (TestOnlyTestsUseIt keeps it so).
//
// Layout:
//
//	fixture.go        Options, Build: compiles cmd/dcos-fixture, writes the installer
//	bootstrap.go      the bootstrap payload (the /opt/mesosphere tree) and the installer file
//	templates/        the installer's bash header
//	cmd/dcos-fixture  one static binary: genconf inside the installer (config
//	                  validation, genconf/serve, templates/ for dcos_install.sh and
//	                  dcos_node_upgrade.sh); on nodes the stand-in services (serve)
//	                  and dcos-check-runner (check)
//	internal/layout   paths, ports and documents both halves share
package testdcos

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/internal/testdcos/internal/layout"
)

// Options choose what the built installer claims to be and how it behaves.
type Options struct {
	// Version is the DC/OS version the installer reports and installs;
	// default "2.2.0-fixture".
	Version string
	// Variant is "oss" or "enterprise"; default "oss".
	Variant string
	// PayloadMiB is the size of the incompressible part of the bootstrap
	// payload; default 32, so that distributing it costs something visible.
	PayloadMiB int
	// FailOnHost makes dcos_install.sh exit 1 with a clear error on the node
	// whose hostname equals it (fault injection). Empty: never.
	FailOnHost string
}

// Defaults of Options.
const (
	DefaultVersion    = "2.2.0-fixture"
	DefaultVariant    = "oss"
	DefaultPayloadMiB = 32
	maxPayloadMiB     = 4096
)

// InstallerName is the file name Build writes.
const InstallerName = "dcos_generate_config.sh"

// Values end up in shell scripts and JSON unquoted-by-design places, so
// they are limited to characters that need no quoting anywhere.
var (
	versionRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)
	hostnameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)
)

func (o Options) withDefaults() (Options, error) {
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.Variant == "" {
		o.Variant = DefaultVariant
	}
	if o.PayloadMiB == 0 {
		o.PayloadMiB = DefaultPayloadMiB
	}
	if !versionRe.MatchString(o.Version) {
		return o, fmt.Errorf("testdcos: version %q: use letters, digits and . _ + - only", o.Version)
	}
	if o.Variant != "oss" && o.Variant != "enterprise" {
		return o, fmt.Errorf("testdcos: variant %q: must be oss or enterprise", o.Variant)
	}
	if o.PayloadMiB < 0 || o.PayloadMiB > maxPayloadMiB {
		return o, fmt.Errorf("testdcos: payload size %d MiB: must be between 1 and %d", o.PayloadMiB, maxPayloadMiB)
	}
	if o.FailOnHost != "" && !hostnameRe.MatchString(o.FailOnHost) {
		return o, fmt.Errorf("testdcos: fail-on host %q is not a hostname", o.FailOnHost)
	}
	return o, nil
}

// Build compiles the node-side binary (static: CGO_ENABLED=0 GOOS=linux, for
// the architecture of this machine, which is the nodes' for the Docker
// backend) and writes a self-contained dcos_generate_config.sh into dir: a
// bash script with a tar.gz payload appended, like the real one. It returns
// the installer's path. The same options give the same bootstrap id, so a
// different Version is what makes an upgrade.
func Build(ctx context.Context, dir string, opts Options) (string, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(dir, ".dcos-fixture-build-")
	if err != nil {
		return "", fmt.Errorf("testdcos: %w", err)
	}
	defer os.RemoveAll(work)

	bin := filepath.Join(work, "dcos-fixture")
	if err := compile(ctx, bin); err != nil {
		return "", err
	}
	binSum, err := plugin.FileSHA256(bin)
	if err != nil {
		return "", fmt.Errorf("testdcos: %w", err)
	}

	m := layout.Manifest{
		Version:    opts.Version,
		Variant:    opts.Variant,
		PayloadMiB: opts.PayloadMiB,
		FailOnHost: opts.FailOnHost,
		// Like a real bootstrap id, it names the content (what is installed),
		// not the cluster's config, which dcos_install.sh carries.
		BootstrapID: sha1Hex("bootstrap", opts.Version, opts.Variant, strconv.Itoa(opts.PayloadMiB), binSum),
		Commit:      sha1Hex("commit", opts.Version, opts.Variant),
	}
	bootstrap := filepath.Join(work, m.BootstrapFile())
	if m.BootstrapSHA256, err = writeBootstrap(ctx, bootstrap, bin, m); err != nil {
		return "", err
	}

	out := filepath.Join(dir, InstallerName)
	if err := writeInstaller(ctx, out, m, bin, bootstrap); err != nil {
		return "", err
	}
	return out, nil
}

// compile builds cmd/dcos-fixture from the source next to this file, so it
// works from any test's working directory.
func compile(ctx context.Context, out string) error {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return errors.New("testdcos: cannot locate the fixture's source")
	}
	cmd := proc.Command(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/dcos-fixture")
	cmd.Dir = filepath.Dir(file)
	// Static, so it runs on any Linux node whatever its libc.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testdcos: go build ./cmd/dcos-fixture: %w\n%s", err, b)
	}
	return nil
}

func sha1Hex(parts ...string) string {
	h := sha1.New()
	for _, p := range parts {
		// Length-prefixed, so ("ab","c") and ("a","bc") differ.
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}
