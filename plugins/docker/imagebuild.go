package main

// Building the default node image: debootstrap into a temporary root
// filesystem, post-processing in a chroot, docker import, then a one-step
// build for what import refuses; one build at a time (imageLock).

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/e2e-tool/e2e/internal/lastlines"
	"github.com/e2e-tool/e2e/internal/proc"
	"golang.org/x/sys/unix"
)

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
	changes = append(changes, fmt.Sprintf("LABEL %s=%s", imageRecipeLabel, r.hash()))
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
