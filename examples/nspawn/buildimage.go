package main

// build-image: a root file system for the nodes, made with debootstrap.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

// imagePackages are installed in the image beside the minimal base.
func imagePackages() []string {
	return []string{"systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "curl", "ca-certificates", "iproute2", "procps"}
}

// imageMasked are units that have nothing to do in a machine sharing the
// host's devices and kernel.
func imageMasked() []string {
	return []string{
		"systemd-udevd.service", "systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
		"systemd-udev-trigger.service", "systemd-udev-settle.service", "getty@tty1.service",
		"systemd-remount-fs.service", "apt-daily.timer", "apt-daily-upgrade.timer", "fstrim.timer",
	}
}

// runBuildImage is `e2e-backend-nspawn build-image DIR [SUITE [MIRROR]]`.
func runBuildImage(ctx context.Context, args []string) int {
	if len(args) < 1 || len(args) > 3 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(os.Stderr, "usage: e2e-backend-nspawn build-image DIR [SUITE [MIRROR]] (default bookworm from http://deb.debian.org/debian)")
		return 2
	}
	dir, err := filepath.Abs(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "build-image: %v\n", err)
		return 2
	}
	suite, mirror := "bookworm", "http://deb.debian.org/debian"
	if len(args) > 1 {
		suite = args[1]
	}
	if len(args) > 2 {
		mirror = args[2]
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		fmt.Fprintf(os.Stderr, "build-image: %s is not empty: give a new directory\n", dir)
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "build-image: needs root (debootstrap and chroot): run it with sudo")
		return 2
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		fmt.Fprintln(os.Stderr, "build-image: debootstrap is not installed: apt-get install debootstrap")
		return 1
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := buildImage(ctx, dir, suite, mirror); err != nil {
		fmt.Fprintf(os.Stderr, "build-image: %v\n", err)
		if ctx.Err() != nil {
			fmt.Fprintf(os.Stderr, "build-image: interrupted; remove %s before trying again\n", dir)
			return 130
		}
		return 1
	}
	fmt.Println(dir)
	return 0
}

// buildImage runs debootstrap into dir and prepares the tree to boot as a
// node: no host keys (each node gets its own), an empty machine-id, sshd
// enabled, and hardware units masked.
func buildImage(ctx context.Context, dir, suite, mirror string) error {
	fmt.Fprintf(os.Stderr, "debootstrap %s from %s into %s (a few minutes)\n", suite, mirror, dir)
	steps := [][]string{
		{"debootstrap", "--variant=minbase", "--include=" + strings.Join(imagePackages(), ","), suite, dir, mirror},
		{"chroot", dir, "systemctl", "enable", "ssh.service"},
		append([]string{"chroot", dir, "systemctl", "mask"}, imageMasked()...),
		{"chroot", dir, "apt-get", "clean"},
	}
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, s[0], s[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(s[:min(len(s), 4)], " "), err)
		}
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "etc", "ssh", "ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	for path, content := range map[string]string{
		"etc/machine-id": "",
		"etc/hostname":   "localhost\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, path), []byte(content), 0o644); err != nil {
			return err
		}
	}
	_ = os.Remove(filepath.Join(dir, "var", "lib", "dbus", "machine-id"))
	return nil
}
