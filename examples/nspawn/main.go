// Command e2e-backend-nspawn is an e2e backend whose nodes are
// systemd-nspawn machines on the machine running e2e: each node boots
// systemd from a shared root file system image through its own overlay, and
// its sshd listens on an address of its own in 127.0.0.0/8. It needs root,
// systemd-nspawn (Debian: systemd-container) and overlayfs, and no container
// engine.
//
// It is written against e2e's public SDK only, as a vendor would write a
// backend outside e2e's repository; see README.md.
package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/e2e-tool/e2e/sdk"
)

// Set with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "0.0.0-dev"
	commit  = ""
)

// Option names.
const (
	optImage       = "image"
	optDir         = "dir"
	optSubnet      = "subnet"
	optSSHPort     = "ssh_port"
	optBootTimeout = "boot_timeout"
)

// defaultDir is the dir option's value when it is not given.
func defaultDir() string {
	if d := os.Getenv("E2E_NSPAWN_DIR"); d != "" {
		return d
	}
	return "/var/lib/e2e-nspawn"
}

// backend is the plugin. It keeps no state between calls: everything it
// knows of a cluster is on disk under the dir option.
type backend struct{}

// Info names the backend, declares its options and says its nodes run sshd
// and can install from a path or a URL.
func (backend) Info() sdk.Info {
	return sdk.Info{
		Name: "nspawn", Version: version, Commit: commit,
		Summary: "systemd-nspawn machines on this host, booted from a root file system directory (needs root)",
		// Every node boots systemd and OpenSSH's sshd with the cluster's
		// key: the core logs in and pins the host keys Create reports.
		NodesRunSSHD: true,
		// The nodes share the host's network: they can download an
		// installer (url) as well as receive one (path).
		InstallMethods: []sdk.InstallMethod{sdk.InstallFromPath, sdk.InstallFromURL},
		Options: sdk.Schema{
			sdk.StringOption(optImage, "directory holding the nodes' root file system, with systemd and "+
				"openssh-server installed (make one with: e2e-backend-nspawn build-image DIR); "+
				"nodes boot from it through an overlay, so leave it unchanged while clusters use it; "+
				"needed to create only (a cluster records its image)").
				// Not MarkRequired: required options are required by every
				// call, and a cluster created with E2E_NSPAWN_IMAGE must
				// be found and destroyed from a shell without it. Validate,
				// which runs before Create only, asks for it.
				FromEnv("E2E_NSPAWN_IMAGE"),
			sdk.StringOption(optDir, "directory for the nodes' own files (their overlay layers and consoles) "+
				"and the clusters' markers; destroy removes a cluster's part of it").
				WithDefault("/var/lib/e2e-nspawn").FromEnv("E2E_NSPAWN_DIR"),
			sdk.StringOption(optSubnet, "loopback network the nodes' addresses come from; each node's sshd "+
				"listens on its own address").WithDefault("127.77.0.0/16"),
			sdk.IntOption(optSSHPort, "port of every node's sshd on its address (use another when a "+
				"host sshd listens on every address)").WithDefault(22),
			sdk.DurationOption(optBootTimeout, "how long a node may take to boot until its sshd answers").
				WithDefault(2 * time.Minute),
		},
	}
}

// Validate checks what the schema cannot: the image is a root file system,
// the subnet is loopback, the port and the directory are usable.
func (backend) Validate(_ context.Context, opts sdk.Options) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	if opts.String(optImage) == "" {
		diags = append(diags, sdk.Errorf(optImage, "option %q is required to create a cluster (give it with -o %s=DIR or set E2E_NSPAWN_IMAGE; make one with e2e-backend-nspawn build-image DIR)", optImage, optImage))
	} else if err := checkImage(opts.String(optImage)); err != nil {
		diags = append(diags, sdk.Errorf(optImage, "option %q: %v", optImage, err))
	}
	if !filepath.IsAbs(opts.String(optDir)) {
		diags = append(diags, sdk.Errorf(optDir, "option %q: %q is not an absolute path", optDir, opts.String(optDir)))
	}
	if _, err := parseSubnet(opts.String(optSubnet)); err != nil {
		diags = append(diags, sdk.Errorf(optSubnet, "option %q: %v", optSubnet, err))
	}
	if p := opts.Int(optSSHPort); p < 1 || p > 65535 {
		diags = append(diags, sdk.Errorf(optSSHPort, "option %q: %d is not a port from 1 to 65535", optSSHPort, p))
	}
	if opts.Duration(optBootTimeout) <= 0 {
		diags = append(diags, sdk.Errorf(optBootTimeout, "option %q: must be more than 0", optBootTimeout))
	}
	return diags
}

// checkImage returns an error saying what a root file system directory
// lacks to boot a node.
func checkImage(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("%q is not an absolute path to a root file system directory", dir)
	}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return fmt.Errorf("%s is not a directory: give a root file system (make one with: e2e-backend-nspawn build-image %s)", dir, dir)
	}
	for _, need := range []struct{ path, what string }{
		{"usr/lib/systemd/systemd", "systemd"},
		{"usr/sbin/sshd", "openssh-server"},
	} {
		if _, err := os.Stat(filepath.Join(dir, need.path)); err != nil {
			return fmt.Errorf("%s has no /%s: install %s in the image", dir, need.path, need.what)
		}
	}
	return nil
}

// parseSubnet parses the subnet option: an IPv4 prefix inside 127.0.0.0/8.
func parseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address prefix such as 127.77.0.0/16", s)
	}
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	if !p.Addr().Is4() || !loopback.Contains(p.Addr()) || p.Bits() < 8 || p.Bits() > 30 {
		return netip.Prefix{}, fmt.Errorf("%s is not inside 127.0.0.0/8 with room for nodes (/8 to /30)", s)
	}
	return p.Masked(), nil
}

func main() {
	// The node launcher: the plugin starts itself in a mount namespace of
	// its own to mount a node's overlay and exec systemd-nspawn there.
	if len(os.Args) > 1 && os.Args[1] == bootArg {
		os.Exit(bootNode(os.Args[2:]))
	}
	sdk.Serve(backend{}, sdk.WithCommand("build-image", sdk.Command{
		Help: "make a root file system for the nodes with debootstrap: build-image DIR (as root, a few minutes)",
		Run:  runBuildImage,
	}))
}
