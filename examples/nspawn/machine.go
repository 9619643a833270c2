package main

// One node's machine: its files, its systemd-nspawn process, its sshd.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// bootArg is the hidden first argument with which the plugin starts itself
// as a node's launcher (bootNode).
const bootArg = "__e2e-nspawn-boot"

// nspawnBinary is the program that runs the machines.
const nspawnBinary = "systemd-nspawn"

// nodeFiles writes what makes a node itself into its overlay's upper layer
// before it first boots: host key, sshd settings, hostname, hosts file and
// the cluster's public key for the login user. It returns the public host
// key.
func nodeFiles(rec *record, n nodeRecord, pubKey string) (string, error) {
	up := filepath.Join(rec.nodeDir(n), "upper")
	for _, d := range []string{"upper", "work", "rootfs"} {
		if err := os.MkdirAll(filepath.Join(rec.nodeDir(n), d), 0o755); err != nil {
			return "", err
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return "", err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	hostKey := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))

	var hosts strings.Builder
	hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, o := range rec.Nodes {
		fmt.Fprintf(&hosts, "%s\t%s\n", o.Address, o.Hostname)
	}
	sshdConfig := fmt.Sprintf("# Written by e2e-backend-nspawn: the node shares the host's network.\n"+
		"ListenAddress %s:%d\nHostKey /etc/ssh/ssh_host_ed25519_key\n"+
		"PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n", n.Address, n.Port)
	files := []struct {
		path string
		data []byte
		mode fs.FileMode
	}{
		{"etc/ssh/ssh_host_ed25519_key", pem.EncodeToMemory(block), 0o600},
		{"etc/ssh/ssh_host_ed25519_key.pub", []byte(hostKey + "\n"), 0o644},
		{"etc/ssh/sshd_config.d/05-e2e-nspawn.conf", []byte(sshdConfig), 0o644},
		{"etc/hostname", []byte(n.Hostname + "\n"), 0o644},
		{"etc/hosts", []byte(hosts.String()), 0o644},
	}
	for _, f := range files {
		if err := writeUpper(rec.Image, up, f.path, f.data, f.mode, 0, 0); err != nil {
			return "", err
		}
	}
	uid, gid, home, err := imageUser(rec.Image, n.User)
	if err != nil {
		return "", err
	}
	home = strings.TrimPrefix(home, "/")
	if err := writeUpper(rec.Image, up, filepath.Join(home, ".ssh", "authorized_keys"), []byte(pubKey+"\n"), 0o600, uid, gid); err != nil {
		return "", err
	}
	if err := os.Chmod(filepath.Join(up, home, ".ssh"), 0o700); err != nil {
		return "", err
	}
	return hostKey, nil
}

// writeUpper writes rel (a path inside the node) into the upper layer up.
// Directories it creates take the mode and owner of the image's directory
// at the same path, since an overlay shows the upper layer's; a new
// directory of the node belongs to uid:gid.
func writeUpper(image, up, rel string, data []byte, mode fs.FileMode, uid, gid int) error {
	parts := strings.Split(filepath.Dir(rel), string(filepath.Separator))
	cur := ""
	for _, p := range parts {
		if p == "." || p == "" {
			continue
		}
		cur = filepath.Join(cur, p)
		target := filepath.Join(up, cur)
		if _, err := os.Lstat(target); err == nil {
			continue
		}
		m, u, g := fs.FileMode(0o755), uid, gid
		if st, err := os.Stat(filepath.Join(image, cur)); err == nil {
			m = st.Mode().Perm()
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				u, g = int(sys.Uid), int(sys.Gid)
			}
		}
		if err := os.Mkdir(target, m); err != nil {
			return err
		}
		if err := os.Chown(target, u, g); err != nil {
			return err
		}
		if err := os.Chmod(target, m); err != nil {
			return err
		}
	}
	path := filepath.Join(up, rel)
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	return os.Chown(path, uid, gid)
}

// imageUser looks a login user up in the image's /etc/passwd: its uid, gid
// and home directory.
func imageUser(image, user string) (uid, gid int, home string, err error) {
	b, err := os.ReadFile(filepath.Join(image, "etc", "passwd"))
	if err != nil {
		return 0, 0, "", fmt.Errorf("reading the image's users: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 7 || f[0] != user {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || !filepath.IsAbs(f[5]) {
			return 0, 0, "", fmt.Errorf("user %q in the image's /etc/passwd is malformed", user)
		}
		return uid, gid, f[5], nil
	}
	return 0, 0, "", fmt.Errorf("the image %s has no user %q: give --ssh-user root, or add the user to the image", image, user)
}

// launch starts a node's machine: the plugin itself, in a new session (so
// that it outlives the plugin and e2e's signals to the plugin's process
// group) and a new mount namespace, mounts the overlay and becomes
// systemd-nspawn (bootNode). Its output goes to console.log, never to the
// plugin's pipes. The returned channel is closed when the process ends.
func launch(rec *record, n nodeRecord) (<-chan struct{}, error) {
	nspawn, err := exec.LookPath(nspawnBinary)
	if err != nil {
		return nil, errors.New("systemd-nspawn is not installed: apt-get install systemd-container")
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	nd := rec.nodeDir(n)
	console, err := os.OpenFile(filepath.Join(nd, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer console.Close()
	rootfs := filepath.Join(nd, "rootfs")
	cmd := exec.Command(self, bootArg, rec.Image, filepath.Join(nd, "upper"), filepath.Join(nd, "work"), rootfs,
		nspawn, "--boot", "--register=no", "--keep-unit", "--link-journal=no", "--console=read-only",
		"--directory="+rootfs, "--machine="+n.Hostname, "--hostname="+n.Hostname,
		"--setenv="+nodeEnv+"="+nd)
	// Only PATH: nothing of the plugin's environment (go-plugin's settings)
	// reaches the machine.
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdout, cmd.Stderr = console, console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Unshareflags: syscall.CLONE_NEWNS}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting node %s: %w", n.Hostname, err)
	}
	pidFile := filepath.Join(nd, "pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	return exited, nil
}

// bootNode is the launcher (see launch): args are the image, the upper,
// work and mount directories, then systemd-nspawn's argv. It runs in a
// mount namespace of its own, so the overlay is visible to the machine only
// and goes away with it.
func bootNode(args []string) int {
	if len(args) < 5 {
		fmt.Fprintln(os.Stderr, "e2e-backend-nspawn starts this itself; it is not a command")
		return 2
	}
	lower, upper, work, rootfs := args[0], args[1], args[2], args[3]
	data := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := syscall.Mount("overlay", rootfs, "overlay", 0, data); err != nil {
		fmt.Fprintf(os.Stderr, "e2e-backend-nspawn: mounting the node's overlay on %s: %v\n", rootfs, err)
		return 1
	}
	err := syscall.Exec(args[4], args[4:], os.Environ())
	fmt.Fprintf(os.Stderr, "e2e-backend-nspawn: running %s: %v\n", args[4], err)
	return 1
}

// waitSSH waits until the node's sshd sends its banner, the machine
// exits, ctx ends or timeout passes.
func waitSSH(ctx context.Context, rec *record, n nodeRecord, exited <-chan struct{}, timeout time.Duration) error {
	addr := net.JoinHostPort(n.Address, strconv.Itoa(n.Port))
	deadline := time.Now().Add(timeout)
	for {
		if sshBanner(addr) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return fmt.Errorf("node %s stopped while booting: %s", n.Hostname, consoleTail(rec, n))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s: no sshd answered on %s within %s (boot_timeout): %s",
				n.Hostname, addr, timeout, consoleTail(rec, n))
		}
	}
}

// sshBanner reports whether an SSH server answers on addr.
func sshBanner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 4)
	_, err = c.Read(b)
	return err == nil && string(b) == "SSH-"
}

// consoleTail is the last line of a node's console, for errors.
func consoleTail(rec *record, n nodeRecord) string {
	b, _ := os.ReadFile(filepath.Join(rec.nodeDir(n), "console.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" {
		return "its console is empty (" + filepath.Join(rec.nodeDir(n), "console.log") + ")"
	}
	return fmt.Sprintf("console says %q (more in %s)", last, filepath.Join(rec.nodeDir(n), "console.log"))
}

// machinePID returns the pid of the node's systemd-nspawn process when it
// runs, 0 otherwise. A pid counts only when that process is
// systemd-nspawn running this node's directory, so a recycled pid is never
// taken for the machine.
func machinePID(rec *record, n nodeRecord) int {
	b, err := os.ReadFile(filepath.Join(rec.nodeDir(n), "pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if ended(pid) {
		return 0
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return 0
	}
	argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	want := "--directory=" + filepath.Join(rec.nodeDir(n), "rootfs")
	for _, a := range argv {
		if a == want {
			return pid
		}
	}
	return 0
}

// ended reports whether a process is gone or a zombie (a process nobody
// reaps still has a /proc entry).
func ended(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// stopMachine halts a node's machine. SIGTERM asks systemd-nspawn to shut
// the machine down cleanly, which it does by sending the machine's systemd
// SIGRTMIN+3 (halt). systemd drops that signal when it comes before its
// handlers are set up (a machine still booting), so the halt is repeated
// to the machine's init directly, each second, for up to grace. Then a
// second SIGTERM makes systemd-nspawn kill the machine itself (its "send
// SIGTERM again"). Whatever still runs after that is killed, the machine's
// init first: SIGKILL to systemd-nspawn alone would leave the machine
// running, re-parented, since a pid namespace outlives the process that
// made it.
func stopMachine(ctx context.Context, rec *record, n nodeRecord, grace time.Duration) error {
	if pid := machinePID(rec, n); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(grace)
		for !waitEnded(ctx, pid, time.Second) && ctx.Err() == nil && time.Now().Before(deadline) {
			for _, init := range machineInits(rec, n) {
				_ = syscall.Kill(init, sigHalt)
			}
		}
		if !ended(pid) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			waitEnded(context.WithoutCancel(ctx), pid, 10*time.Second)
		}
	}
	// Bounded, and done even when ctx has ended: it only kills.
	var left []int
	for _, pid := range machineInits(rec, n) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		left = append(left, pid)
	}
	if pid := machinePID(rec, n); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		left = append(left, pid)
	}
	for _, pid := range left {
		if !waitEnded(context.Background(), pid, 10*time.Second) {
			return fmt.Errorf("node %s: its machine (pid %d) did not end after SIGKILL", n.Hostname, pid)
		}
	}
	return nil
}

// sigHalt is SIGRTMIN+3 as the C library numbers it (SIGRTMIN is 34 with
// glibc and musl): systemd halts the machine on it.
const sigHalt = syscall.Signal(34 + 3)

// nodeEnv names the variable launch gives a machine's init (systemd-nspawn's
// --setenv). Its value, the node's directory, proves that a process is that
// machine's init even when systemd-nspawn is gone.
const nodeEnv = "E2E_NSPAWN_NODE"

// machineInits returns the pids of the processes that are pid 1 of their
// pid namespace and carry n's nodeEnv: its machine's init, normally one,
// none when the machine does not run. Killing it ends every process of the
// machine.
func machineInits(rec *record, n nodeRecord) []int {
	want := []byte("\x00" + nodeEnv + "=" + rec.nodeDir(n) + "\x00")
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || ended(pid) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append([]byte{0}, env...), want) {
			continue
		}
		if nsInit(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// nsInit reports whether pid is pid 1 of its own pid namespace (the last
// field of NSpid in /proc/PID/status).
func nsInit(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			return len(f) > 1 && f[len(f)-1] == "1"
		}
	}
	return false
}

// waitEnded waits up to d for pid to end.
func waitEnded(ctx context.Context, pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !ended(pid) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}
