package main

// The node image: Debian bookworm with systemd as PID 1 and sshd, built on
// this machine without a registry (debootstrap, then docker import) and
// cached under a tag derived from the hash of its recipe.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/gofrs/flock"
	"golang.org/x/sys/unix"

	"github.com/e2e-tool/e2e/internal/lastlines"
	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/sdk"
)

// DefaultImageRepo is the repository of the default node image; its tag is
// the first 12 hex digits of the recipe hash.
const DefaultImageRepo = "e2e-node"

const (
	imageRecipeLabel  = "e2e.image-recipe" // full recipe hash on the default image
	imageManagedLabel = "e2e.managed"      // "true" on everything e2e builds
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
		Script:        imagePostScript,
		ImportChanges: []string{`CMD ["/sbin/init"]`, `ENV container=docker`},
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

// ensureImage returns the reference of a usable node image: ref itself when
// ref != "" (it must exist in the engine: nothing is pulled), otherwise the
// default image, built when missing.
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

// buildImage builds the default image unconditionally, with its temporary
// root filesystem under $TMPDIR.
func buildImage(ctx context.Context, cli *client.Client, progress func(string)) (string, error) {
	if progress == nil {
		progress = func(string) {}
	}
	unlock, err := imageLock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	return buildImageIn(ctx, cli, "", progress)
}

// buildImageIn builds the default image with its temporary root filesystem
// in a new directory under dir ("" for $TMPDIR), removed afterwards whatever
// happens. The caller holds the build lock.
func buildImageIn(ctx context.Context, cli *client.Client, dir string, progress func(string)) (ref string, err error) {
	r := defaultNodeImageRecipe()
	ref = r.ref()
	start := time.Now()
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("building node image %s needs root (debootstrap and chroot): "+
			"run `sudo e2e-backend-docker build-image` once, or give an image of your own with -o image=…", ref)
	}
	debootstrap, err := imageLookTool("debootstrap")
	if err != nil {
		return "", fmt.Errorf("building node image %s: debootstrap is not installed: apt-get install debootstrap", ref)
	}
	chroot, err := imageLookTool("chroot")
	if err != nil {
		return "", fmt.Errorf("building node image %s: chroot (coreutils) is not installed", ref)
	}
	var old string // the image ref names now, if any
	if img, err := cli.ImageInspect(ctx, ref); err == nil {
		old = img.ID
	} else if !cerrdefs.IsNotFound(err) {
		return "", imageEngineError(cli, fmt.Errorf("node image %s: %w", ref, err))
	}

	tmp, err := os.MkdirTemp(dir, "e2e-node-rootfs-")
	if err != nil {
		return "", fmt.Errorf("building node image %s: %w", ref, err)
	}
	defer func() {
		if cerr := imageRemoveRootfs(tmp); cerr != nil && err == nil {
			err = cerr
		}
	}()
	rootfs := filepath.Join(tmp, "rootfs")

	mirror := imageMirror()
	progress(fmt.Sprintf("debootstrap %s from %s (about 40 s)", r.Suite, mirror))
	t0 := time.Now()
	if err := imageRunTool(ctx, debootstrap, "--variant="+r.Variant, "--include="+strings.Join(r.Packages, ","),
		r.Suite, rootfs, mirror); err != nil {
		return "", fmt.Errorf("building node image %s: %w (if $TMPDIR is mounted noexec or nodev, point TMPDIR elsewhere; set %s for another Debian mirror)",
			ref, err, imageMirrorEnv)
	}
	tDebootstrap := time.Since(t0)

	progress("configure (ssh, machine-id, masked units)")
	t0 = time.Now()
	if err := imageRunTool(ctx, chroot, rootfs, "/bin/sh", "-c", r.Script); err != nil {
		return "", fmt.Errorf("building node image %s: post-processing: %w", ref, err)
	}
	tConfigure := time.Since(t0)

	progress(fmt.Sprintf("import into Docker as %s (about 3 s)", ref))
	t0 = time.Now()
	changes := append([]string{}, r.ImportChanges...)
	changes = append(changes, fmt.Sprintf("LABEL %s=%s %s=true", imageRecipeLabel, r.hash(), imageManagedLabel))
	imported, err := imageImportRootfs(ctx, cli, rootfs, changes)
	if err != nil {
		return "", imageEngineError(cli, fmt.Errorf("building node image %s: import: %w", ref, err))
	}
	tImport := time.Since(t0)
	t0 = time.Now()
	if err := imageFinish(ctx, cli, imported, ref, r.BuildSteps); err != nil {
		// The bare import is of no use on its own.
		_, _ = cli.ImageRemove(context.WithoutCancel(ctx), imported, image.RemoveOptions{})
		return "", imageEngineError(cli, fmt.Errorf("building node image %s: %w", ref, err))
	}
	tFinish := time.Since(t0)
	if old != "" {
		// The image this one replaces, and its import, unless a container
		// still uses it.
		if _, err := cli.ImageRemove(ctx, old, image.RemoveOptions{PruneChildren: true}); err != nil {
			progress(fmt.Sprintf("kept the image %s replaced (%s): %s", ref, strings.TrimPrefix(old, "sha256:")[:12], imageOneLine(err)))
		}
	}
	ms := func(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
	progress(fmt.Sprintf("built %s in %s (debootstrap %s, configure %s, import %s, stop signal %s)", ref,
		ms(time.Since(start)), ms(tDebootstrap), ms(tConfigure), ms(tImport), ms(tFinish)))
	return ref, nil
}

// imageImportRootfs streams a tar of rootfs into docker import and returns
// the new (untagged) image's ID.
func imageImportRootfs(ctx context.Context, cli *client.Client, rootfs string, changes []string) (string, error) {
	pr, pw := io.Pipe()
	var tarErr lastlines.Writer
	cmd := proc.Command(ctx, "tar", "-C", rootfs, "--numeric-owner", "--xattrs", "--xattrs-include=security.capability",
		"-cf", "-", ".")
	cmd.Stdout, cmd.Stderr = pw, &tarErr
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("tar: %w", err)
	}
	tarDone := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("tar of the root filesystem: %w: %s", err, strings.Join(tarErr.Last(5), " | "))
		}
		pw.CloseWithError(err) // nil: the reader sees EOF
		tarDone <- err
	}()
	body, err := cli.ImageImport(ctx, image.ImportSource{Source: pr, SourceName: "-"}, "",
		image.ImportOptions{Changes: changes})
	var id string
	if err == nil {
		_, err = imageReadStream(body, func(m imageMessage) {
			if strings.HasPrefix(m.Status, "sha256:") {
				id = strings.TrimSpace(m.Status)
			}
		})
		if err == nil && id == "" {
			err = errors.New("the engine did not report the new image's ID")
		}
		body.Close()
	}
	pr.CloseWithError(errors.New("import ended")) // unblocks tar if the engine stopped reading
	if terr := <-tarDone; terr != nil && err == nil {
		err = terr
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	return id, err
}

// imageFinish adds steps to the imported image with a one-step build (no
// registry needed: the base is a local image ID) and tags the result ref.
func imageFinish(ctx context.Context, cli *client.Client, base, ref string, steps []string) error {
	dockerfile := "FROM " + base + "\n" + strings.Join(steps, "\n") + "\n"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile)),
		ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	if _, err := io.WriteString(tw, dockerfile); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags: []string{ref}, Dockerfile: "Dockerfile", Remove: true, ForceRemove: true,
		Version: build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	defer resp.Body.Close()
	if _, err := imageReadStream(resp.Body, nil); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	return nil
}

// imageMessage is the part of the engine's JSON progress messages we read.
type imageMessage struct {
	Status      string `json:"status"`
	Stream      string `json:"stream"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// imageReadStream reads a stream of JSON messages to its end and returns
// the first error one of them reports.
func imageReadStream(r io.Reader, each func(imageMessage)) (string, error) {
	dec := json.NewDecoder(r)
	var last string
	for {
		var m imageMessage
		if err := dec.Decode(&m); err == io.EOF {
			return last, nil
		} else if err != nil {
			return last, err
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return last, errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return last, errors.New(m.Error)
		}
		if m.Stream != "" {
			last = strings.TrimSpace(m.Stream)
		}
		if each != nil {
			each(m)
		}
	}
}

// imageRunTool runs a build tool in its own process group, so that
// cancelling ctx ends it and everything it started (dpkg in the chroot).
func imageRunTool(ctx context.Context, name string, args ...string) error {
	cmd := proc.Command(ctx, name, args...)
	var out lastlines.Writer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	err := cmd.Run()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("%s: %w: %s", filepath.Base(name), err, strings.Join(out.Last(5), " | "))
	}
	return nil
}

// imageRemoveRootfs removes the temporary build directory, after detaching
// anything debootstrap left mounted in it (it mounts /proc and /sys, and a
// killed debootstrap does not unmount). It refuses to remove files through
// a mount it could not detach.
func imageRemoveRootfs(dir string) error {
	for _, m := range imageMountsUnder(dir) {
		_ = unix.Unmount(m, unix.MNT_DETACH)
	}
	if left := imageMountsUnder(dir); len(left) > 0 {
		return fmt.Errorf("node image build: %s is still mounted: unmount it, then remove %s", left[0], dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("node image build: removing %s: %w", dir, err)
	}
	return nil
}

// imageMountsUnder lists the mount points at or below dir, deepest first.
func imageMountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := imageUnescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts
}

// imageUnescapeMount undoes mountinfo's octal escapes (\040 for a space).
func imageUnescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
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

// imageMirror is the Debian mirror to debootstrap from: $E2E_DEBIAN_MIRROR,
// else the one this machine's apt uses, else deb.debian.org.
func imageMirror() string {
	if m := os.Getenv(imageMirrorEnv); m != "" {
		return m
	}
	for _, f := range []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"} {
		if b, err := os.ReadFile(f); err == nil {
			if m := imageMirrorFrom(string(b)); m != "" {
				return m
			}
		}
	}
	return imageDefaultMirr
}

// imageMirrorFrom finds the first Debian archive (a URI ending in /debian,
// so neither debian-security nor an Ubuntu mirror) in apt sources, in the
// deb822 format (URIs:) or the one-line format (deb [opts] URI suite ...).
func imageMirrorFrom(sources string) string {
	for _, line := range strings.Split(sources, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		var uris []string
		switch {
		case strings.EqualFold(f[0], "URIs:"):
			uris = f[1:]
		case f[0] == "deb":
			rest := f[1:]
			if len(rest) > 0 && strings.HasPrefix(rest[0], "[") {
				for len(rest) > 0 && !strings.HasSuffix(rest[0], "]") {
					rest = rest[1:]
				}
				if len(rest) > 0 {
					rest = rest[1:]
				}
			}
			if len(rest) > 0 {
				uris = rest[:1]
			}
		}
		for _, u := range uris {
			u = strings.TrimSuffix(u, "/")
			if strings.HasSuffix(u, "/debian") && (strings.HasPrefix(u, "http://") ||
				strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "file:")) {
				return u
			}
		}
	}
	return ""
}

// imageLookTool finds a build tool in $PATH or the sbin directories, which
// are often not in a user's $PATH.
func imageLookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// imageEngineError turns "cannot connect" into one line saying what to do.
func imageEngineError(cli *client.Client, err error) error {
	if err == nil || !client.IsErrConnectionFailed(err) {
		return err
	}
	return fmt.Errorf("docker: cannot connect to the Docker engine at %s: start it or set DOCKER_HOST (%w)",
		cli.DaemonHost(), err)
}

// checkHost reports what is missing to run the backend, one problem per
// line with its fix; nil when ready.
func checkHost(ctx context.Context, cli *client.Client) []string {
	var problems []string
	if cli == nil {
		return []string{"docker: no Docker client: set DOCKER_HOST to the Docker engine's address"}
	}
	built, engineOK := false, true
	if _, err := cli.Ping(ctx); err != nil {
		engineOK = false
		fix := "start it or set DOCKER_HOST"
		if strings.Contains(err.Error(), "permission denied") {
			fix = "add your user to the docker group (or run as root)"
		}
		problems = append(problems, fmt.Sprintf("docker: cannot connect to the Docker engine at %s: %s (%v)",
			cli.DaemonHost(), fix, imageOneLine(err)))
	} else {
		r := defaultNodeImageRecipe()
		ok, err := imageIsBuilt(ctx, cli, r)
		if err != nil {
			problems = append(problems, imageOneLine(err))
		}
		built = ok
	}
	if built {
		return problems // building needs nothing else
	}
	if _, err := imageLookTool("debootstrap"); err != nil {
		problems = append(problems, "debootstrap is not installed: apt-get install debootstrap (it builds the node image)")
	}
	if _, err := os.Stat(imageKeyring); err != nil {
		problems = append(problems, "the Debian archive keyring is not installed: apt-get install debian-archive-keyring (debootstrap checks bookworm with it)")
	}
	if os.Geteuid() != 0 {
		problems = append(problems, fmt.Sprintf("building node image %s needs root: run `sudo e2e-backend-docker build-image` once", defaultImageRef()))
	}
	if engineOK {
		problems = append(problems, fmt.Sprintf("node image %s not built yet: run e2e-backend-docker build-image (or it is built on first create, about 45 s)", defaultImageRef()))
	}
	return problems
}

func imageOneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// imageCommands are the plugin executable's own subcommands, for
// sdk.WithCommand: build-image and doctor.
func imageCommands() map[string]sdk.Command {
	return map[string]sdk.Command{
		"build-image": {
			Help: "build the node image " + defaultImageRef() + " now, about 45 s; flags -if-missing, -dockerfile",
			Run:  runBuildImage,
		},
		"doctor": {
			Help: "check what this machine lacks to run the docker backend",
			Run:  runDoctor,
		},
	}
}

func runBuildImage(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("build-image", flag.ContinueOnError)
	ifMissing := fs.Bool("if-missing", false, "build only when the image is not in the engine yet")
	dockerfile := fs.Bool("dockerfile", false, "print the same recipe as a Dockerfile (for `docker build -t NAME -`) and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "build-image: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *dockerfile {
		fmt.Print(nodeDockerfile)
		return 0
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		fmt.Fprintf(os.Stderr, "build-image: docker client: %v\n", err)
		return 1
	}
	defer cli.Close()
	progress := func(s string) { fmt.Fprintln(os.Stderr, s) }
	var ref string
	if *ifMissing {
		ref, err = ensureImage(ctx, cli, "", progress)
	} else {
		ref, err = buildImage(ctx, cli, progress)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "build-image: interrupted; temporary files removed")
		return 130
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "build-image: %v\n", err)
		return 1
	}
	fmt.Println(ref)
	return 0
}

func runDoctor(ctx context.Context, args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(os.Stderr, "doctor: unexpected argument %q\n", args[0])
		return 2
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		fmt.Printf("docker: invalid Docker client settings (DOCKER_HOST, DOCKER_CERT_PATH): %v\n", err)
		return 1
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	problems := checkHost(ctx, cli)
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		return 1
	}
	fmt.Printf("ok: Docker engine at %s, node image %s\n", cli.DaemonHost(), defaultImageRef())
	return 0
}
