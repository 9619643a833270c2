package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
	"github.com/e2e-tool/e2e/internal/testbin"
	"golang.org/x/crypto/ssh"
)

// imgTestLabels marks every container these tests make, so that
// `docker ps -a --filter label=e2e.test` finds leftovers.
var imgTestLabels = map[string]string{"e2e.test": "image"}

// imgTestClient connects to this machine's engine, or skips the test loudly.
func imgTestClient(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	testbin.Require(t, "a Docker client", err)
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		testbin.Require(t, "a running Docker engine at "+cli.DaemonHost(), err)
	}
	return cli
}

// imgTestEnsure returns the default image, skipping loudly when it is
// missing and this machine cannot build it.
func imgTestEnsure(t *testing.T, cli *client.Client) string {
	t.Helper()
	ctx := context.Background()
	built, err := imageIsBuilt(ctx, cli, defaultNodeImageRecipe())
	if err != nil {
		t.Fatal(err)
	}
	if !built {
		_, err := imageLookTool("debootstrap")
		testbin.Require(t, "debootstrap to build the node image (make deps installs it)", err)
		if os.Geteuid() != 0 {
			testbin.Require(t, "root to build the node image", errors.New("not root (run e2e-backend-docker build-image as root)"))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	ref, err := ensureImage(ctx, cli, "", func(s string) { t.Logf("progress: %s", s) })
	if err != nil {
		t.Fatalf("ensureImage: %v", err)
	}
	t.Logf("ensureImage(\"\") = %s in %s", ref, time.Since(start).Round(time.Millisecond))
	return ref
}

// imgTestCreate creates (without starting) a node-like container from ref,
// removed when the test ends.
func imgTestCreate(t *testing.T, cli *client.Client, ref string) string {
	t.Helper()
	ctx := context.Background()
	cfg := &container.Config{
		Image: ref, Labels: imgTestLabels,
		ExposedPorts: nat.PortSet{"22/tcp": struct{}{}},
	}
	hc := &container.HostConfig{
		CgroupnsMode: container.CgroupnsModePrivate,
		CapAdd:       []string{"ALL"},
		CapDrop:      []string{"SYS_RESOURCE"},
		SecurityOpt:  []string{"seccomp=unconfined", "apparmor=unconfined"},
		Tmpfs:        map[string]string{"/run": "", "/run/lock": "", "/tmp": ""},
		PortBindings: nat.PortMap{"22/tcp": []nat.PortBinding{{HostIP: "127.0.0.1"}}},
	}
	c, err := cli.ContainerCreate(ctx, cfg, hc, nil, nil, "")
	if err != nil {
		t.Fatalf("create container from %s: %v", ref, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			t.Errorf("remove container %s: %v", c.ID[:12], err)
		}
	})
	return c.ID
}

// imgTestReadFile reads one file of a container (started or not).
func imgTestReadFile(t *testing.T, cli *client.Client, id, path string) ([]byte, error) {
	t.Helper()
	rc, _, err := cli.CopyFromContainer(context.Background(), id, path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	if err != nil {
		return nil, err
	}
	if h.Typeflag != tar.TypeReg {
		t.Fatalf("%s is not a regular file (tar type %c)", path, h.Typeflag)
	}
	return io.ReadAll(tr)
}

// imgTestList lists the names in a container's directory.
func imgTestList(t *testing.T, cli *client.Client, id, dir string) []string {
	t.Helper()
	rc, _, err := cli.CopyFromContainer(context.Background(), id, dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("read %s: %v", dir, err)
		}
		names = append(names, h.Name)
	}
}

// imgTestExec runs a command in a running container and returns its
// combined output and exit code.
func imgTestExec(ctx context.Context, cli *client.Client, id string, cmd ...string) (string, int, error) {
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", -1, err
	}
	att, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return "", -1, err
	}
	defer att.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil {
		return out.String(), -1, err
	}
	st, err := cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return out.String(), -1, err
	}
	return strings.TrimSpace(out.String()), st.ExitCode, nil
}

// imgTestKeys makes what the backend copies into a node before it starts:
// an ed25519 host key and root's authorized_keys. It returns the tar and the
// client's signer and the expected host key.
func imgTestKeys(t *testing.T) (io.Reader, ssh.Signer, ssh.PublicKey) {
	t.Helper()
	hostPub, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, userPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(hostPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	hostSSHPub, err := ssh.NewPublicKey(hostPub)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(userPriv)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, mode int64, body []byte) {
		typ := byte(tar.TypeReg)
		if strings.HasSuffix(name, "/") {
			typ = tar.TypeDir
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(body)), Typeflag: typ,
			ModTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	add("etc/ssh/ssh_host_ed25519_key", 0o600, pem.EncodeToMemory(block))
	add("etc/ssh/ssh_host_ed25519_key.pub", 0o644, ssh.MarshalAuthorizedKey(hostSSHPub))
	add("root/.ssh/", 0o700, nil)
	add("root/.ssh/authorized_keys", 0o600, ssh.MarshalAuthorizedKey(signer.PublicKey()))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, signer, hostSSHPub
}

// imgTestBoot starts a node container with a host key in place and waits
// (at most 60 s) until systemd says the system is running.
func imgTestBoot(t *testing.T, cli *client.Client, ref string) (id string, signer ssh.Signer, hostKey ssh.PublicKey) {
	t.Helper()
	ctx := context.Background()
	id = imgTestCreate(t, cli, ref)
	files, signer, hostKey := imgTestKeys(t)
	if err := cli.CopyToContainer(ctx, id, "/", files, container.CopyToContainerOptions{}); err != nil {
		t.Fatalf("copy host key: %v", err)
	}
	start := time.Now()
	if err := cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		t.Fatalf("start container from %s: %v", ref, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var state string
	for {
		// Until systemd has its bus up the command fails; --wait then
		// blocks until boot has finished.
		out, _, err := imgTestExec(wctx, cli, id, "systemctl", "is-system-running", "--wait")
		state = out
		if err == nil && (state == "running" || state == "degraded") {
			break
		}
		select {
		case <-wctx.Done():
			logs, _, _ := imgTestExec(ctx, cli, id, "journalctl", "-b", "--no-pager", "-n", "40")
			t.Fatalf("container %s did not finish booting in 60 s (last state %q); journal:\n%s", id[:12], state, logs)
		case <-time.After(250 * time.Millisecond):
		}
	}
	t.Logf("container %s: systemd %s %s after start", id[:12], state, time.Since(start).Round(time.Millisecond))
	if state != "running" {
		failed, _, _ := imgTestExec(ctx, cli, id, "systemctl", "--failed", "--no-legend", "--no-pager")
		t.Fatalf("systemd in %s is %q, want running; failed units:\n%s", id[:12], state, failed)
	}
	return id, signer, hostKey
}

func TestNodeImageRecipe(t *testing.T) {
	r := defaultNodeImageRecipe()
	if !regexp.MustCompile(`^e2e-node:[0-9a-f]{12}$`).MatchString(defaultImageRef()) {
		t.Fatalf("defaultImageRef() = %q", defaultImageRef())
	}
	if got := DefaultImageRepo + ":" + r.hash()[:12]; got != defaultImageRef() {
		t.Fatalf("defaultImageRef() = %q, want %q", defaultImageRef(), got)
	}
	if r.hash() != defaultNodeImageRecipe().hash() {
		t.Fatal("the recipe hash is not stable")
	}
	changed := defaultNodeImageRecipe()
	changed.Script += "true\n"
	if changed.hash() == r.hash() {
		t.Fatal("the recipe hash ignores the post-processing script")
	}
	changed = defaultNodeImageRecipe()
	changed.Packages = append(changed.Packages, "vim")
	if changed.hash() == r.hash() {
		t.Fatal("the recipe hash ignores the packages")
	}
	t.Setenv(imageMirrorEnv, "http://mirror.invalid/debian")
	if ref := defaultImageRef(); ref != r.ref() {
		t.Fatalf("the mirror changed the image name: %s", ref)
	}
}

// The Dockerfile for users with a registry must follow the recipe.
func TestNodeImageDockerfile(t *testing.T) {
	r := defaultNodeImageRecipe()
	df := nodeDockerfile
	if !strings.Contains(df, "FROM debian:"+r.Suite+"\n") {
		t.Errorf("node.Dockerfile is not FROM debian:%s", r.Suite)
	}
	if want := strings.Join(r.Packages, " "); !strings.Contains(df, want) {
		t.Errorf("node.Dockerfile does not install %q", want)
	}
	for _, line := range strings.Split(r.Script, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(df, "    "+line+"; \\\n") && !strings.Contains(df, "RUN "+line+"; \\\n") &&
			!strings.Contains(df, "    "+line+"\n") {
			t.Errorf("node.Dockerfile lacks the recipe's post-processing line %q", line)
		}
	}
	for _, in := range append(append([]string{}, r.ImportChanges...), r.BuildSteps...) {
		if !strings.Contains(df, "\n"+in+"\n") {
			t.Errorf("node.Dockerfile lacks %q", in)
		}
	}
}

func TestNodeImageMirror(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"deb822", "Types: deb\n# http://snapshot.debian.org/x\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\n", "http://deb.debian.org/debian"},
		{"security first", "URIs: http://deb.debian.org/debian-security\nURIs: https://mirror.example/debian/\n", "https://mirror.example/debian"},
		{"one-line", "# deb http://old/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://ftp.de.debian.org/debian bookworm main\n", "http://ftp.de.debian.org/debian"},
		{"ubuntu", "deb http://archive.ubuntu.com/ubuntu jammy main\n", ""},
	} {
		if got := imageMirrorFrom(tc.in); got != tc.want {
			t.Errorf("%s: imageMirrorFrom = %q, want %q", tc.name, got, tc.want)
		}
	}
	t.Setenv(imageMirrorEnv, "http://local/debian")
	if got := imageMirror(); got != "http://local/debian" {
		t.Errorf("imageMirror with $%s = %q", imageMirrorEnv, got)
	}
}

func TestNodeImage(t *testing.T) {
	cli := imgTestClient(t)
	ref := imgTestEnsure(t, cli)
	ctx := context.Background()
	r := defaultNodeImageRecipe()
	if ref != defaultImageRef() {
		t.Fatalf("ensureImage(\"\") = %q, want %q", ref, defaultImageRef())
	}

	img, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	labels := img.Config.Labels
	if labels[imageRecipeLabel] != r.hash() || !strings.HasSuffix(ref, ":"+labels[imageRecipeLabel][:12]) {
		t.Errorf("label %s = %q, want %q (tag %s)", imageRecipeLabel, labels[imageRecipeLabel], r.hash(), ref)
	}
	if labels[imageManagedLabel] != "true" {
		t.Errorf("label %s = %q, want true", imageManagedLabel, labels[imageManagedLabel])
	}
	if img.Config.StopSignal != "SIGRTMIN+3" {
		t.Errorf("stop signal %q, want SIGRTMIN+3", img.Config.StopSignal)
	}
	if strings.Join(img.Config.Cmd, " ") != "/sbin/init" {
		t.Errorf("cmd %q, want /sbin/init", img.Config.Cmd)
	}
	if !strings.Contains(strings.Join(img.Config.Env, "\n"), "container=docker") {
		t.Errorf("env %q lacks container=docker", img.Config.Env)
	}
	t.Logf("image %s: id %s, %d MB", ref, img.ID[7:19], img.Size/1000/1000)

	// The image as shipped: no host keys, an empty machine-id.
	t.Run("files", func(t *testing.T) {
		id := imgTestCreate(t, cli, ref)
		for _, name := range imgTestList(t, cli, id, "/etc/ssh") {
			if strings.HasPrefix(name[strings.LastIndex(name, "/")+1:], "ssh_host_") {
				t.Errorf("the image has a host key: /etc/%s", name)
			}
		}
		mid, err := imgTestReadFile(t, cli, id, "/etc/machine-id")
		if err != nil {
			t.Fatalf("read /etc/machine-id: %v", err)
		}
		if len(mid) != 0 {
			t.Errorf("/etc/machine-id = %q, want empty", mid)
		}
		if _, err := imgTestReadFile(t, cli, id, "/var/lib/dbus/machine-id"); err == nil {
			t.Error("/var/lib/dbus/machine-id exists in the image")
		} else if !cerrdefs.IsNotFound(err) {
			t.Errorf("read /var/lib/dbus/machine-id: %v", err)
		}
		conf, err := imgTestReadFile(t, cli, id, "/etc/ssh/sshd_config.d/10-e2e.conf")
		if err != nil {
			t.Fatalf("read the sshd drop-in: %v", err)
		}
		for _, want := range []string{"PermitRootLogin prohibit-password", "PasswordAuthentication no", "UseDNS no"} {
			if !strings.Contains(string(conf), want+"\n") {
				t.Errorf("sshd drop-in lacks %q:\n%s", want, conf)
			}
		}
	})

	// Two nodes boot to "running", get their own machine ids, and sshd lets
	// root in with the authorised key.
	t.Run("boot", func(t *testing.T) {
		var ids []string
		for range 2 {
			id, signer, hostKey := imgTestBoot(t, cli, ref)
			ids = append(ids, id)
			out, code, err := imgTestExec(ctx, cli, id, "systemctl", "is-active", "ssh.service")
			if err != nil || code != 0 || out != "active" {
				t.Fatalf("ssh.service in %s: %q (exit %d, %v)", id[:12], out, code, err)
			}
			imgTestSSH(t, cli, id, signer, hostKey)
		}
		var mids []string
		for _, id := range ids {
			out, _, err := imgTestExec(ctx, cli, id, "cat", "/etc/machine-id")
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(out) {
				t.Fatalf("machine-id of %s is %q", id[:12], out)
			}
			mids = append(mids, out)
		}
		if mids[0] == mids[1] {
			t.Fatalf("two nodes share the machine-id %s", mids[0])
		}
	})

	// A second call finds the image instead of building it again.
	start := time.Now()
	again, err := ensureImage(ctx, cli, "", func(s string) { t.Errorf("second ensureImage reported progress: %s", s) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second ensureImage: %s", time.Since(start).Round(time.Millisecond))
	img2, err := cli.ImageInspect(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	if again != ref || img2.ID != img.ID {
		t.Fatalf("second ensureImage = %s (%s), want %s (%s) unchanged", again, img2.ID, ref, img.ID)
	}
}

// imgTestSSH logs in as root on the node's published port with the key the
// test authorised, checking the host key the test put in.
func imgTestSSH(t *testing.T, cli *client.Client, id string, signer ssh.Signer, hostKey ssh.PublicKey) {
	t.Helper()
	info, err := cli.ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	bindings := info.NetworkSettings.Ports["22/tcp"]
	if len(bindings) == 0 {
		t.Fatalf("port 22 of %s is not published", id[:12])
	}
	addr := net.JoinHostPort(bindings[0].HostIP, bindings[0].HostPort)
	cfg := &ssh.ClientConfig{
		User:              "root",
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.FixedHostKey(hostKey),
		HostKeyAlgorithms: []string{hostKey.Type()},
		Timeout:           10 * time.Second,
	}
	conn, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("ssh root@%s: %v", addr, err)
	}
	defer conn.Close()
	s, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.CombinedOutput("cat /etc/hostname")
	if err != nil {
		t.Fatalf("ssh root@%s cat /etc/hostname: %v: %s", addr, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != info.Config.Hostname {
		t.Errorf("ssh root@%s: hostname %q, want %q", addr, got, info.Config.Hostname)
	}
}

func TestEnsureImageMissingRef(t *testing.T) {
	cli := imgTestClient(t)
	const ref = "e2e-no-such-image:1"
	_, err := ensureImage(context.Background(), cli, ref, nil)
	if err == nil {
		t.Fatalf("ensureImage(%q) succeeded", ref)
	}
	t.Logf("error: %v", err)
	for _, want := range []string{ref, "docker build", "node.Dockerfile", "docker load"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}

func TestCheckHost(t *testing.T) {
	t.Run("ready", func(t *testing.T) {
		cli := imgTestClient(t)
		imgTestEnsure(t, cli)
		if problems := checkHost(context.Background(), cli); problems != nil {
			t.Fatalf("checkHost on a ready machine:\n%s", strings.Join(problems, "\n"))
		}
	})
	t.Run("no engine", func(t *testing.T) {
		t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
		cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		problems := checkHost(ctx, cli)
		t.Logf("checkHost:\n%s", strings.Join(problems, "\n"))
		if len(problems) == 0 || !strings.Contains(problems[0], "tcp://127.0.0.1:1") ||
			!strings.Contains(problems[0], "Docker engine") || !strings.Contains(problems[0], "DOCKER_HOST") {
			t.Fatalf("checkHost without an engine = %q, want a first line naming tcp://127.0.0.1:1 and DOCKER_HOST", problems)
		}
		for _, p := range problems {
			if strings.Contains(p, "\n") {
				t.Errorf("problem spans lines: %q", p)
			}
		}
		// ensureImage says the same kind of thing.
		_, err = ensureImage(ctx, cli, "", nil)
		if err == nil || !strings.Contains(err.Error(), "tcp://127.0.0.1:1") {
			t.Errorf("ensureImage without an engine: %v", err)
		}
	})
}
