package main

// One node: its container, and the files that make it itself (host key,
// machine id, the SSH user's authorized key) copied in before it starts.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"github.com/e2e-tool/e2e/sdk"
	"golang.org/x/crypto/ssh"
)

// startNode creates and starts a node. When the engine refuses a
// privileged node although it was thought to allow them, the node is made
// again with every capability but SYS_RESOURCE.
func startNode(ctx context.Context, cli *client.Client, p *plan, n nodePlan, pv *privileges, r sdk.Reporter) (string, error) {
	privileged := pv.get()
	id, err := createNode(ctx, cli, p, n, privileged)
	if err != nil {
		return "", err
	}
	err = cli.ContainerStart(ctx, id, container.StartOptions{})
	if err != nil && privileged && ctx.Err() == nil && capsRefused(err) {
		pv.refused(refusalReason(err))
		pv.warnOnce(r)
		if rerr := cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil {
			return "", engineError(fmt.Errorf("removing %s to make it again without privileges: %w", n.name, rerr))
		}
		if id, err = createNode(ctx, cli, p, n, false); err != nil {
			return "", err
		}
		err = cli.ContainerStart(ctx, id, container.StartOptions{})
	}
	if err != nil {
		return "", engineError(fmt.Errorf("starting %s: %w", n.name, err))
	}
	return id, nil
}

// hostKey is a node's SSH host key pair in file form.
type hostKey struct {
	private []byte // OpenSSH PEM
	public  string // authorized_keys form, no comment
}

func newHostKey() (hostKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return hostKey{}, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return hostKey{}, err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return hostKey{}, err
	}
	return hostKey{private: pem.EncodeToMemory(block),
		public: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))}, nil
}

// createNode creates a node's container (not started) with its host key,
// machine id and the cluster's authorized key copied in.
func createNode(ctx context.Context, cli *client.Client, p *plan, n nodePlan, privileged bool) (string, error) {
	key, err := newHostKey()
	if err != nil {
		return "", fmt.Errorf("generating the host key of %s: %w", n.name, err)
	}
	labels := map[string]string{}
	for k, v := range p.opts.Map(optLabels) {
		labels[k] = v
	}
	for k, v := range p.opts.Map(labelOptions[n.role]) {
		labels[k] = v
	}
	for k, v := range p.commonLabels() {
		labels[k] = v
	}
	security := securityPrivileged
	if !privileged {
		security = securityCaps
	}
	for k, v := range map[string]string{
		labelRole: string(n.role), labelIndex: strconv.Itoa(n.index), labelNetwork: p.network,
		labelSSHUser: p.sshUser, labelHostKey: key.public, labelSecurity: security,
		labelCreated: p.created.Format(time.RFC3339Nano), labelTransport: p.opts.String(optTransport),
		labelNodes: nodeCounts(p),
	} {
		labels[k] = v
	}

	exposed := nat.PortSet{"22/tcp": {}}
	bindings := nat.PortMap{"22/tcp": {{HostIP: "127.0.0.1", HostPort: ""}}}
	for _, m := range n.ports {
		port := nat.Port(fmt.Sprintf("%d/%s", m.ContainerPort, m.Proto))
		exposed[port] = struct{}{}
		bindings[port] = append(bindings[port], nat.PortBinding{HostIP: m.HostIP, HostPort: strconv.Itoa(m.HostPort)})
	}

	var mounts []mount.Mount
	targets := map[string]bool{}
	for _, m := range n.mounts {
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
		targets[path.Clean(m.Target)] = true
	}
	// Docker and Mesos inside a node need a file system that is not
	// overlayfs: labelled anonymous volumes, removed with the container.
	volumes := []string{"/var/lib/docker"}
	if n.role != sdk.RoleMaster {
		volumes = append(volumes, "/var/lib/mesos/slave")
	}
	for _, target := range volumes {
		if targets[target] {
			continue
		}
		vl := p.commonLabels()
		vl[labelRole], vl[labelIndex] = string(n.role), strconv.Itoa(n.index)
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Target: target,
			VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: vl}})
	}

	hc := &container.HostConfig{
		NetworkMode:  container.NetworkMode(p.network),
		PortBindings: bindings,
		Mounts:       mounts,
		CgroupnsMode: container.CgroupnsModePrivate,
		SecurityOpt:  []string{"seccomp=unconfined", "apparmor=unconfined"},
		Tmpfs: map[string]string{
			"/run":      "rw,exec,nosuid,nodev,mode=755",
			"/run/lock": "rw,noexec,nosuid,nodev",
			"/tmp":      "rw,exec,nosuid,nodev",
		},
		Privileged: privileged,
	}
	if !privileged {
		hc.CapAdd = []string{"ALL"}
		hc.CapDrop = []string{"SYS_RESOURCE"}
	}
	if p.memoryMiB > 0 {
		hc.Resources.Memory = p.memoryMiB << 20
	}
	cfg := &container.Config{
		Hostname:     sdk.NodeHostname(p.id, n.role, n.index),
		Image:        p.image,
		Labels:       labels,
		Env:          []string{"container=docker"},
		ExposedPorts: exposed,
		StopSignal:   "SIGRTMIN+3",
	}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		// The hostname resolves on the cluster network as the name does.
		p.network: {NetworkID: p.networkID, Aliases: []string{sdk.NodeHostname(p.id, n.role, n.index)}},
	}}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	dctx, cancel := detached(ctx)
	defer cancel()
	resp, err := cli.ContainerCreate(dctx, cfg, hc, nc, nil, n.name)
	if err != nil {
		return "", engineError(fmt.Errorf("creating %s: %w", n.name, err))
	}
	files, err := nodeFiles(ctx, cli, resp.ID, p, n, key)
	if err != nil {
		return "", err
	}
	if err := cli.CopyToContainer(ctx, resp.ID, "/", bytes.NewReader(files), container.CopyToContainerOptions{}); err != nil {
		return "", engineError(fmt.Errorf("copying the SSH keys into %s: %w", n.name, err))
	}
	return resp.ID, nil
}

// nodeFiles is the tar archive, rooted at /, of what makes a node itself:
// its SSH host key, a fresh machine id and the authorized key of the SSH
// user.
func nodeFiles(ctx context.Context, cli *client.Client, id string, p *plan, n nodePlan, key hostKey) ([]byte, error) {
	home, uid, gid := "/root", 0, 0
	if p.sshUser != "root" {
		var err error
		if home, uid, gid, err = p.user.get(ctx, cli, id, p.sshUser); err != nil {
			return nil, err
		}
	}
	machineID, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	add := func(name string, mode int64, uid, gid int, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: mode, Uid: uid, Gid: gid, ModTime: now, Typeflag: tar.TypeReg, Size: int64(len(data))}
		if data == nil {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	home = strings.TrimPrefix(path.Clean(home), "/")
	steps := []error{
		add("etc/ssh/ssh_host_ed25519_key", 0o600, 0, 0, key.private),
		add("etc/ssh/ssh_host_ed25519_key.pub", 0o644, 0, 0, []byte(key.public+" root@"+n.name+"\n")),
		add("etc/machine-id", 0o444, 0, 0, []byte(machineID+"\n")),
		add(home+"/.ssh/", 0o700, uid, gid, nil),
		add(home+"/.ssh/authorized_keys", 0o600, uid, gid, []byte(p.pubKey+"\n")),
		tw.Close(),
	}
	if err := errors.Join(steps...); err != nil {
		return nil, fmt.Errorf("packing the files of %s: %w", n.name, err)
	}
	return buf.Bytes(), nil
}

// lookupUser reads a user's home and ids from the image's /etc/passwd.
func lookupUser(ctx context.Context, cli *client.Client, id, user string) (home string, uid, gid int, err error) {
	rc, _, err := cli.CopyFromContainer(ctx, id, "/etc/passwd")
	if err != nil {
		return "", 0, 0, fmt.Errorf("reading /etc/passwd to find SSH user %q: %w", user, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		return "", 0, 0, fmt.Errorf("reading /etc/passwd: %w", err)
	}
	sc := bufio.NewScanner(tr)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) >= 6 && f[0] == user {
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			return f[5], uid, gid, nil
		}
	}
	return "", 0, 0, &sdk.DiagnosticsError{Diagnostics: []sdk.Diagnostic{{Severity: sdk.SeverityError,
		Summary: fmt.Sprintf("SSH user %q does not exist in the node image: use an image that has it, or --ssh-user root", user)}}}
}
