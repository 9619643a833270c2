package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/goccy/go-yaml"
)

// The instances moto launches exist nowhere. Stand-ins take their place:
// for every running instance a container of e2e's node image (systemd,
// sshd) boots the way cloud-init would boot the instance from its user
// data and key pair, both read back from the EC2 API. The core reaches a
// stand-in only through --ssh-proxy-command: a script that maps the
// instance's address, as the backend reports it (%h), to the stand-in's
// sshd on 127.0.0.1. Nothing ever dials an address moto handed out.

// hypervisor boots a stand-in for every instance moto runs, and removes
// it when the instance is terminated.
type hypervisor struct {
	t       testing.TB
	m       *moto
	image   string // the node image
	network string // Docker network of the stand-ins (and test servers)
	dir     string // the proxy script and its map
	// Proxy is the --ssh-proxy-command value.
	Proxy string

	mu       sync.Mutex
	booted   map[string]*standin // by instance id
	failures []error
	stop     context.CancelFunc
	done     chan struct{}
}

// standin is the container standing in for one instance.
type standin struct {
	Container string
	Port      int
	Config    cloudConfig // what cloud-init would apply
	Index     int         // launch index
	Address   string      // %h: the address the backend reports
	// terminated: the instance is gone, and so is the stand-in.
	terminated bool
}

// cloudConfig is the part of the user data's cloud-config a stand-in
// applies.
type cloudConfig struct {
	SSHDeleteKeys bool              `yaml:"ssh_deletekeys"`
	SSHKeys       map[string]string `yaml:"ssh_keys"`
	DisableRoot   *bool             `yaml:"disable_root"`
	Users         []any             `yaml:"users"`
	Bootcmd       [][]string        `yaml:"bootcmd"`
}

// renderUserData does what cloud-init's Jinja step does with the user data
// the backend writes, for one launch index: keeps the branch of
// `{% if i == N %}` / `{% elif i == N %}` that matches, drops the others
// and the template lines, and parses the cloud-config.
func renderUserData(data string, index int) (cloudConfig, string, error) {
	var out []string
	keep := true
	lines := strings.Split(data, "\n")
	if len(lines) < 2 || lines[0] != "## template: jinja" || lines[1] != "#cloud-config" {
		return cloudConfig{}, "", fmt.Errorf("user data is not a Jinja cloud-config: %q", strings.Join(lines[:min(2, len(lines))], "\\n"))
	}
	for _, l := range lines[2:] {
		if strings.HasPrefix(l, "{%") {
			body := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(l, "{%"), "%}"))
			f := strings.Fields(body)
			switch {
			case len(f) == 4 && (f[0] == "if" || f[0] == "elif") && f[1] == "i" && f[2] == "==":
				n, err := strconv.Atoi(f[3])
				if err != nil {
					return cloudConfig{}, "", fmt.Errorf("template line %q", l)
				}
				keep = n == index
			case body == "endif":
				keep = true
			case strings.HasPrefix(body, "set i = ds.meta_data.ami_launch_index"):
			default:
				return cloudConfig{}, "", fmt.Errorf("template line the stand-in does not know: %q", l)
			}
			continue
		}
		if keep {
			out = append(out, l)
		}
	}
	rendered := strings.Join(out, "\n")
	var cfg cloudConfig
	if err := yaml.Unmarshal([]byte(rendered), &cfg); err != nil {
		return cloudConfig{}, rendered, fmt.Errorf("cloud-config: %w\n%s", err, rendered)
	}
	return cfg, rendered, nil
}

// startHypervisor watches moto and boots stand-ins on a Docker network of
// its own; everything it made goes when the test ends.
func startHypervisor(t testing.TB, m *moto, image string) *hypervisor {
	t.Helper()
	dir := t.TempDir()
	h := &hypervisor{t: t, m: m, image: image, dir: dir, booted: map[string]*standin{}, done: make(chan struct{})}
	h.network = "e2e-aws-test-" + randomHex(4)
	if out, err := exec.Command("docker", "network", "create", "--label", "e2e.cluster-id="+h.network, h.network).CombinedOutput(); err != nil {
		t.Fatalf("docker network create: %v: %s", err, out)
	}
	script := filepath.Join(dir, "standin-proxy")
	if err := os.WriteFile(script, []byte(`#!/bin/bash
# standin-proxy HOST PORT NODE: the SSH connection to the instance at HOST
# goes to the sshd of its stand-in, on 127.0.0.1.
port=$(awk -v h="$1" '$1 == h {print $2}' "`+filepath.Join(dir, "map")+`" 2>/dev/null)
[ -n "$port" ] || { echo "instance $1 ($3) has not booted yet" >&2; exit 1; }
[ "$2" = 22 ] || { echo "instance $1: nothing listens on port $2" >&2; exit 1; }
exec 3<>/dev/tcp/127.0.0.1/$port || exit 1
cat <&3 &
exec cat >&3
`), 0o755); err != nil {
		t.Fatal(err)
	}
	h.Proxy = script + " %h %p %n"
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	go h.watch(ctx)
	t.Cleanup(func() {
		cancel()
		<-h.done
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, s := range h.booted {
			_ = exec.Command("docker", "rm", "-f", "-v", s.Container).Run()
		}
		_ = exec.Command("sh", "-c", "docker rm -f -v $(docker ps -aq --filter label=e2e.standin-network="+h.network+") 2>/dev/null").Run()
		_ = exec.Command("docker", "network", "rm", h.network).Run()
		for _, err := range h.failures {
			t.Errorf("stand-in: %v", err)
		}
	})
	return h
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// watch boots a stand-in for every running instance, and removes the
// stand-in of every terminated one, until ctx ends.
func (h *hypervisor) watch(ctx context.Context) {
	defer close(h.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		out, err := h.m.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		if err == nil {
			for _, r := range out.Reservations {
				for _, inst := range r.Instances {
					id := aws.ToString(inst.InstanceId)
					h.mu.Lock()
					s, known := h.booted[id]
					if !known && inst.State.Name == types.InstanceStateNameRunning {
						h.booted[id] = &standin{}
						wg.Add(1)
						go func() {
							defer wg.Done()
							err := h.boot(ctx, inst)
							h.mu.Lock()
							// An instance terminated while its stand-in
							// booted takes the stand-in with it.
							if err != nil && ctx.Err() == nil && !h.booted[id].terminated {
								h.failures = append(h.failures, fmt.Errorf("%s: %w", id, err))
							}
							h.mu.Unlock()
						}()
					}
					if known && !s.terminated && (inst.State.Name == types.InstanceStateNameTerminated || inst.State.Name == types.InstanceStateNameShuttingDown) {
						s.terminated = true
						if s.Container != "" {
							_ = exec.Command("docker", "rm", "-f", "-v", s.Container).Run()
						}
					}
					h.mu.Unlock()
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Standin returns the stand-in of an instance, once it has booted.
func (h *hypervisor) Standin(instanceID string) (*standin, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.booted[instanceID]
	if !ok || s.Port == 0 {
		return nil, false
	}
	return s, true
}

// boot starts the stand-in of inst as cloud-init would boot it: the host
// key of its launch index, the key pair's key for the image's user (admin,
// as on Debian), the users and disable_root of the cloud-config, and its
// bootcmd; then it maps the instance's address to the stand-in's port.
func (h *hypervisor) boot(ctx context.Context, inst types.Instance) error {
	id := aws.ToString(inst.InstanceId)
	attr, err := h.m.EC2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: inst.InstanceId, Attribute: types.InstanceAttributeNameUserData})
	if err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(attr.UserData.Value))
	if err != nil {
		return fmt.Errorf("user data: %w", err)
	}
	index := int(aws.ToInt32(inst.AmiLaunchIndex))
	cfg, _, err := renderUserData(string(raw), index)
	if err != nil {
		return err
	}
	keys, err := h.m.EC2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{aws.ToString(inst.KeyName)}, IncludePublicKey: aws.Bool(true)})
	if err != nil || len(keys.KeyPairs) != 1 {
		return fmt.Errorf("key pair %s: %v", aws.ToString(inst.KeyName), err)
	}
	keyPairKey := strings.TrimSpace(aws.ToString(keys.KeyPairs[0].PublicKey))
	tags := tagMap(inst.Tags)
	name := "e2e-aws-standin-" + id
	run := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("docker %s: %w: %s", args[0], err, out)
		}
		return string(out), nil
	}
	// Known before it exists, and made whole even when the test ends
	// meanwhile (a killed docker create may still leave the container),
	// so that the cleanup finds it.
	h.mu.Lock()
	h.booted[id].Container = name
	h.mu.Unlock()
	create := func(args ...string) (string, error) {
		out, err := exec.Command("docker", args...).CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("docker %s: %w: %s", args[0], err, out)
		}
		return string(out), nil
	}
	if _, err := create("create", "--name", name, "--label", "e2e.cluster-id="+tags[tagClusterID],
		"--label", "e2e.standin-network="+h.network, "--label", "e2e.standin-for="+id,
		"--hostname", "ip-"+strings.ReplaceAll(aws.ToString(inst.PrivateIpAddress), ".", "-"),
		"--network", h.network, "--cgroupns", "private",
		"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
		"--tmpfs", "/run:rw,exec,nosuid,nodev,mode=755", "--tmpfs", "/run/lock:rw,noexec,nosuid,nodev",
		"--tmpfs", "/tmp:rw,exec,nosuid,nodev", "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
		"-e", "container=docker", "--stop-signal", "SIGRTMIN+3", "-p", "127.0.0.1::22", h.image); err != nil {
		return err
	}
	h.mu.Lock()
	gone := h.booted[id].terminated
	h.mu.Unlock()
	if gone {
		_ = exec.Command("docker", "rm", "-f", "-v", name).Run()
		return nil
	}
	// cloud-init's ssh module: the host key from the user data.
	priv, pub := cfg.SSHKeys["ed25519_private"], cfg.SSHKeys["ed25519_public"]
	if priv == "" || pub == "" {
		return fmt.Errorf("the user data has no ed25519 host key for launch index %d", index)
	}
	var files bytes.Buffer
	tw := tar.NewWriter(&files)
	for _, f := range []struct {
		path string
		mode int64
		body string
	}{
		{"etc/ssh/ssh_host_ed25519_key", 0o600, strings.TrimSpace(priv) + "\n"},
		{"etc/ssh/ssh_host_ed25519_key.pub", 0o644, pub + "\n"},
		{"etc/machine-id", 0o444, randomHex(16) + "\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.path, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	cp := exec.CommandContext(ctx, "docker", "cp", "-", name+":/")
	cp.Stdin = &files
	if out, err := cp.CombinedOutput(); err != nil {
		return fmt.Errorf("docker cp: %w: %s", err, out)
	}
	if _, err := run("start", name); err != nil {
		return err
	}
	// cloud-init's users: the image's default user (admin on Debian) with
	// the key pair's key, and the cloud-config's own.
	script := addUser("admin", keyPairKey)
	for _, u := range cfg.Users {
		if m, ok := u.(map[string]any); ok {
			name, _ := m["name"].(string)
			var key string
			if ks, ok := m["ssh_authorized_keys"].([]any); ok && len(ks) > 0 {
				key, _ = ks[0].(string)
			}
			script += addUser(name, key)
		}
	}
	if cfg.DisableRoot != nil && !*cfg.DisableRoot {
		script += "install -d -m 700 /root/.ssh && echo '" + keyPairKey + "' >> /root/.ssh/authorized_keys\n"
	}
	if _, err := run("exec", name, "sh", "-c", script); err != nil {
		return err
	}
	// systemd's bus comes up a moment after the start.
	for deadline := time.Now().Add(time.Minute); ; {
		out, err := run("exec", name, "systemctl", "is-system-running", "--wait")
		if err == nil || strings.Contains(out, "degraded") {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("systemd did not boot: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// cloud-init's bootcmd, as root.
	for _, c := range cfg.Bootcmd {
		if _, err := run(append([]string{"exec", name}, c...)...); err != nil {
			return fmt.Errorf("bootcmd %q: %w", c, err)
		}
	}
	out, err := run("port", name, "22/tcp")
	if err != nil {
		return err
	}
	_, portText, _ := strings.Cut(strings.TrimSpace(strings.Split(out, "\n")[0]), "127.0.0.1:")
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("docker port: %q", out)
	}
	if err := waitBanner(ctx, port); err != nil {
		return err
	}
	addr := aws.ToString(inst.PublicIpAddress)
	if addr == "" {
		addr = aws.ToString(inst.PrivateIpAddress)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.booted[id]
	s.Port, s.Config, s.Index = port, cfg, index
	// Both addresses: the backend reports one or the other
	// (use_private_addresses).
	for _, a := range []string{aws.ToString(inst.PublicIpAddress), aws.ToString(inst.PrivateIpAddress)} {
		if a != "" {
			s.Address = addr
			if err := appendLine(filepath.Join(h.dir, "map"), fmt.Sprintf("%s %d", a, port)); err != nil {
				return err
			}
		}
	}
	return nil
}

func addUser(name, key string) string {
	if name == "" || name == "default" {
		return ""
	}
	return fmt.Sprintf(`id %[1]s >/dev/null 2>&1 || useradd -m -s /bin/bash %[1]s
install -d -m 700 -o %[1]s -g %[1]s /home/%[1]s/.ssh
echo '%[2]s' >> /home/%[1]s/.ssh/authorized_keys && chown %[1]s: /home/%[1]s/.ssh/authorized_keys && chmod 600 /home/%[1]s/.ssh/authorized_keys
echo '%[1]s ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-%[1]s
`, name, key)
}

// appendLine appends a line to the proxy's map in one write.
func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// waitBanner waits until sshd answers on 127.0.0.1:port.
func waitBanner(ctx context.Context, port int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 4)
			n, _ := c.Read(buf)
			c.Close()
			if string(buf[:n]) == "SSH-" {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("sshd on 127.0.0.1:%d did not answer", port)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
