package main

// The node image: Debian bookworm with systemd as PID 1 and sshd, built on
// this machine without a registry (debootstrap, then docker import) and
// cached under a tag derived from the hash of its recipe.

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
	"github.com/gofrs/flock"

	"github.com/e2e-tool/e2e/sdk"
)

// DefaultImageRepo is the repository of the default node image; its tag is
// the first 12 hex digits of the recipe hash.
const DefaultImageRepo = "e2e-node"

const (
	imageRecipeLabel = "e2e.image-recipe" // full recipe hash on the default image
	// imageManagedLabel is "true" on the images e2e builds. It is not
	// e2e.managed, which containers would inherit from the image.
	imageManagedLabel = "e2e.node-image"
	imageMirrorEnv    = "E2E_DEBIAN_MIRROR"
	imageDefaultMirr  = "http://deb.debian.org/debian"
	imageKeyring      = "/usr/share/keyrings/debian-archive-keyring.gpg"
)

// nodeDockerfile is node.Dockerfile, the same recipe for users with a
// registry; `e2e-backend-docker build-image -dockerfile` prints it.
//
//go:embed node.Dockerfile
var nodeDockerfile string

// imagePostScript runs with /bin/sh inside the fresh root filesystem (chroot).
// node.Dockerfile repeats every command line of it.
const imagePostScript = `set -eu
# SSH: no host keys in the image (the backend generates one per node and
# copies it in before the node starts); root logs in with keys only.
rm -f /etc/ssh/ssh_host_*
mkdir -p /etc/ssh/sshd_config.d
printf '%s\n' 'PermitRootLogin prohibit-password' 'PasswordAuthentication no' 'UseDNS no' >/etc/ssh/sshd_config.d/10-e2e.conf
systemctl enable ssh.service
# An empty machine-id: systemd writes a fresh one when each node first boots.
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id
# Nothing of the build host (Docker provides these files at run time).
echo localhost >/etc/hostname
: >/etc/resolv.conf
# Units that would act on the host's devices or kernel when a node runs
# privileged (udev, gettys on the host's ttys, debugfs, binfmt_misc), or that
# have nothing to do in a container.
systemctl mask systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udev-trigger.service systemd-udev-settle.service
systemctl mask getty@tty1.service console-getty.service systemd-remount-fs.service
systemctl mask sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount
# Timers that would run apt or disk maintenance in the middle of a test.
systemctl mask apt-daily.timer apt-daily-upgrade.timer fstrim.timer e2scrub_all.timer e2scrub_reap.service
# A smaller image: no package cache or lists (run apt-get update before installing).
apt-get clean
rm -rf /var/lib/apt/lists/*
`

// nodeImageRecipe describes the default node image; its hash names the
// image. The mirror packages come from is not part of it.
type nodeImageRecipe struct {
	Suite    string   `json:"suite"`
	Variant  string   `json:"variant"`
	Packages []string `json:"packages"`
	// Script is the post-processing, run with /bin/sh in the root filesystem.
	Script string `json:"script"`
	// ImportChanges are Dockerfile instructions applied by docker import.
	ImportChanges []string `json:"import_changes"`
	// BuildSteps are instructions docker import refuses (Docker 20.10 has no
	// STOPSIGNAL there), added by a one-step build on top of the import.
	BuildSteps []string `json:"build_steps"`
}

func defaultNodeImageRecipe() nodeImageRecipe {
	return nodeImageRecipe{
		Suite:   "bookworm",
		Variant: "minbase",
		Packages: []string{"systemd", "systemd-sysv", "openssh-server", "sudo", "curl",
			"ca-certificates", "iproute2", "procps", "dbus"},
		Script: imagePostScript,
		// The label is part of the recipe: an image built with an older
		// label is another recipe, so it is built again.
		ImportChanges: []string{`CMD ["/sbin/init"]`, `ENV container=docker`, `LABEL ` + imageManagedLabel + `=true`},
		BuildSteps:    []string{`STOPSIGNAL SIGRTMIN+3`},
	}
}

// hash is the hex sha256 of the recipe's canonical JSON.
func (r nodeImageRecipe) hash() string {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // a struct of strings always marshals
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (r nodeImageRecipe) ref() string { return DefaultImageRepo + ":" + r.hash()[:12] }

// defaultImageRef is "e2e-node:<first 12 hex of the recipe hash>".
func defaultImageRef() string { return defaultNodeImageRecipe().ref() }

// missingImage says that the image the user named is not in the engine,
// and how to get it there; it is the caller's mistake (a diagnostic of the
// image option).
func missingImage(cli *client.Client, ref string) error {
	return &sdk.DiagnosticsError{Diagnostics: []sdk.Diagnostic{sdk.Errorf(optImage,
		"option %q: node image %q is not in the Docker engine at %s (nothing is pulled): "+
			"build it with `e2e-backend-docker build-image -dockerfile | docker build -t %s -` "+
			"(or docker build -t %s -f plugins/docker/node.Dockerfile plugins/docker in the e2e source tree), "+
			"or load it with `docker load -i FILE`", optImage, ref, cli.DaemonHost(), ref, ref)}}
}

// ensureImage returns the reference of a usable node image: ref itself when
// ref != "" (it must exist in the engine: nothing is pulled), otherwise the
// default image, built when missing.
func ensureImage(ctx context.Context, cli *client.Client, ref string, progress func(string)) (string, error) {
	if progress == nil {
		progress = func(string) {}
	}
	if ref != "" {
		_, err := cli.ImageInspect(ctx, ref)
		switch {
		case err == nil:
			return ref, nil
		case cerrdefs.IsNotFound(err):
			return "", missingImage(cli, ref)
		default:
			return "", imageEngineError(cli, fmt.Errorf("node image %q: %w", ref, err))
		}
	}

	r := defaultNodeImageRecipe()
	ok, err := imageIsBuilt(ctx, cli, r)
	if err != nil || ok {
		return r.ref(), err
	}
	unlock, err := imageLock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another e2e process may have built it while we waited for the lock.
	if ok, err := imageIsBuilt(ctx, cli, r); err != nil || ok {
		return r.ref(), err
	}
	progress(fmt.Sprintf("node image %s is not built yet: building it (about 45 s, once)", r.ref()))
	return buildImageIn(ctx, cli, "", progress)
}

// imageIsBuilt reports whether the recipe's image is in the engine.
func imageIsBuilt(ctx context.Context, cli *client.Client, r nodeImageRecipe) (bool, error) {
	img, err := cli.ImageInspect(ctx, r.ref())
	switch {
	case cerrdefs.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, imageEngineError(cli, fmt.Errorf("node image %s: %w", r.ref(), err))
	}
	// The tag is only 12 hex digits: trust it only with the full hash.
	return img.Config != nil && img.Config.Labels[imageRecipeLabel] == r.hash(), nil
}

// imageLock serialises image builds between e2e processes on this machine
// (a flock on a file in $TMPDIR, polled until ctx ends).
func imageLock(ctx context.Context) (func(), error) {
	path := filepath.Join(os.TempDir(), "e2e-node-image.lock")
	fl := flock.New(path, flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o666))
	if _, err := fl.TryLockContext(ctx, 200*time.Millisecond); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("node image build lock %s: %w", path, err)
	}
	return func() { _ = fl.Unlock() }, nil
}

// imageEngineError turns "cannot connect" into one line saying what to do.
func imageEngineError(cli *client.Client, err error) error {
	if err == nil || !client.IsErrConnectionFailed(err) {
		return err
	}
	return fmt.Errorf("docker: cannot connect to the Docker engine at %s: start it or set DOCKER_HOST (%w)",
		cli.DaemonHost(), err)
}

func imageOneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
