package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"github.com/e2e-tool/e2e/sdk"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sync/errgroup"
)

const (
	// bootTimeout bounds the wait for systemd to finish booting a node.
	bootTimeout = 2 * time.Minute
	// apiTimeout bounds one Docker call that makes a resource; such calls
	// are not cancelled half-way, so that what exists is always known.
	apiTimeout = 60 * time.Second
	// workspaceMarker is a file in every workspace directory, so that
	// clean removes only directories e2e made.
	workspaceMarker = ".e2e-workspace"
)

// plan is everything Create decided before it makes containers.
type plan struct {
	id, uid   string
	image     string
	network   string // name
	networkID string
	workspace string
	memoryMiB int64
	sshUser   string
	pubKey    string
	created   time.Time
	nodes     []nodePlan
	opts      sdk.Options
	// user is the SSH user's home and ids, read once from the first node
	// made and shared by all.
	user userLookup
}

// userLookup reads the SSH user from the image once: every node has the
// same /etc/passwd, and a user the image lacks is said once.
type userLookup struct {
	once     sync.Once
	home     string
	uid, gid int
	err      error
}

func (u *userLookup) get(ctx context.Context, cli *client.Client, containerID, user string) (string, int, int, error) {
	u.once.Do(func() { u.home, u.uid, u.gid, u.err = lookupUser(ctx, cli, containerID, user) })
	return u.home, u.uid, u.gid, u.err
}

type nodePlan struct {
	role   sdk.Role
	index  int
	name   string
	mounts []sdk.Mount
	ports  []portMapping
}

// commonLabels are on every container, network and volume of a creation.
func (p *plan) commonLabels() map[string]string {
	labels := creatorLabels()
	labels[labelManaged] = "true"
	labels[labelClusterID] = p.id
	labels[labelUID] = p.uid
	labels[labelWorkspace] = p.workspace
	return labels
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// newPlan turns the request into a plan; bad options become diagnostics.
func newPlan(req sdk.CreateRequest) (*plan, error) {
	opts := req.Options
	uid, err := randomHex(8)
	if err != nil {
		return nil, err
	}
	p := &plan{id: req.ClusterID, uid: uid, memoryMiB: int64(opts.Int(optMemory)), sshUser: req.SSHUser,
		pubKey: strings.TrimSpace(req.SSHPublicKey), created: time.Now().UTC(), opts: opts}
	if p.sshUser == "" {
		p.sshUser = "root"
	}
	var diags []sdk.Diagnostic
	root := opts.String(optWorkspaceDir)
	if root == "" {
		root = os.TempDir()
	}
	if root, err = filepath.Abs(root); err != nil {
		return nil, err
	}
	p.workspace = filepath.Join(root, "e2e-"+p.id+"-"+p.uid)
	ports, err := parsePortMap(opts.String(optPortMap))
	if err != nil {
		diags = append(diags, sdk.Errorf(optPortMap, "option %q: %v", optPortMap, err))
	}
	mounts := map[sdk.Role][]sdk.Mount{}
	for _, role := range sdk.Roles() {
		name := mountOptions[role]
		for _, m := range opts.Mounts(name) {
			am, err := absMount(m)
			if err != nil {
				diags = append(diags, sdk.Errorf(name, "option %q: %v", name, err))
				continue
			}
			mounts[role] = append(mounts[role], am)
		}
	}
	if len(diags) > 0 {
		return nil, &sdk.DiagnosticsError{Diagnostics: diags}
	}
	for _, role := range sdk.Roles() {
		for i := 0; i < req.Count(role); i++ {
			n := nodePlan{role: role, index: i, name: containerName(p.id, role, i), mounts: mounts[role]}
			if role == sdk.RoleMaster && i == 0 {
				n.ports = ports
			}
			p.nodes = append(p.nodes, n)
		}
	}
	return p, nil
}

// Create makes the cluster's network and all node containers in parallel,
// starts them and waits until systemd has booted each; the core then checks
// that sshd takes the cluster key. On failure or cancellation everything
// made is removed, unless req.Retain.
func (b backend) Create(ctx context.Context, req sdk.CreateRequest, r sdk.Reporter) (*sdk.Cluster, error) {
	p, err := newPlan(req)
	if err != nil {
		return nil, err
	}
	cli, err := newClient()
	if err != nil {
		return nil, err
	}
	defer cli.Close()

	c, err := b.create(ctx, cli, p, r)
	if err == nil {
		return c, nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("creating cluster %q was interrupted: %w", p.id, ctx.Err())
	}
	if req.Retain {
		sdk.Logger(ctx).Info("create failed; keeping what was made (retain)", "cluster", p.id, "uid", p.uid)
		return nil, err
	}
	cctx, cancel := sdk.CleanupContext(ctx)
	defer cancel()
	if cerr := removeCluster(cctx, cli, p.id, p.uid, []string{p.workspace}, nil); cerr != nil {
		return nil, fmt.Errorf("%w; cleaning up also failed: %v", err, cerr)
	}
	return nil, err
}

func (b backend) create(ctx context.Context, cli *client.Client, p *plan, r sdk.Reporter) (*sdk.Cluster, error) {
	log, t0 := sdk.Logger(ctx), time.Now()
	image, err := ensureImage(ctx, cli, p.opts.String(optImage), func(msg string) {
		r.Progress("node image", msg, 0, 0)
	})
	if err != nil {
		return nil, engineError(err)
	}
	p.image = image
	log.Debug("node image ready", "image", image, "elapsed", time.Since(t0).Round(time.Millisecond).String())

	// The network, the privileges and the workspace do not depend on each
	// other. A probe container is removed while the nodes are made;
	// Create returns only when it is gone.
	var (
		wg              sync.WaitGroup
		removeProbe     sync.WaitGroup
		netErr, privErr error
		workspaceErr    error
		pv              *privileges
	)
	defer removeProbe.Wait()
	wg.Add(3)
	removeProbe.Add(1)
	go func() {
		defer wg.Done()
		if name := p.opts.String(optNetwork); name != "" {
			p.network, p.networkID, netErr = userNetwork(ctx, cli, name)
			return
		}
		p.network = networkName(p.id)
		dctx, cancel := detached(ctx)
		defer cancel()
		p.networkID, netErr = createNetwork(dctx, cli, p.network, p.commonLabels())
	}()
	go func() {
		defer wg.Done()
		var remove func()
		pv, remove, privErr = decidePrivileges(ctx, cli, p)
		go func() {
			defer removeProbe.Done()
			remove()
		}()
	}()
	go func() {
		defer wg.Done()
		workspaceErr = makeWorkspace(p)
	}()
	wg.Wait()
	if err := errors.Join(netErr, privErr, workspaceErr); err != nil {
		return nil, err
	}
	log.Debug("network, privileges and workspace ready", "privileged", pv.get(), "elapsed", time.Since(t0).Round(time.Millisecond).String())
	pv.warnOnce(r)

	total := int64(len(p.nodes))
	var started, booted atomic.Int64
	err = parallel(ctx, len(p.nodes), func(ctx context.Context, i int) error {
		n := p.nodes[i]
		id, err := startNode(ctx, cli, p, n, pv, r)
		if err != nil {
			return err
		}
		log.Debug("node started", "node", n.name, "elapsed", time.Since(t0).Round(time.Millisecond).String())
		r.Progress("start nodes", n.name, started.Add(1), total)
		if err := waitBooted(ctx, cli, id, n.name, r); err != nil {
			return err
		}
		log.Debug("node booted", "node", n.name, "elapsed", time.Since(t0).Round(time.Millisecond).String())
		r.Progress("boot nodes", n.name, booted.Add(1), total)
		return nil
	})
	if err != nil {
		return nil, err
	}
	c, err := getCluster(ctx, cli, sdk.ClusterRef{ClusterID: p.id, UID: p.uid})
	if err != nil {
		return nil, fmt.Errorf("reading back cluster %q: %w", p.id, err)
	}
	for _, n := range c.Nodes {
		if n.SSH.Port == 0 || n.PrivateAddress == "" {
			return nil, fmt.Errorf("node %s has no published SSH port or no address on network %s", n.Name, p.network)
		}
	}
	r.Infof("%d %s ready on network %s (image %s)", len(c.Nodes), plural(len(c.Nodes), "node"), p.network, p.image)
	return c, nil
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// detached returns a context for a call that makes a resource: not
// cancelled with ctx, so the call either made the resource or did not,
// but bounded.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
}

// parallel runs f for 0..n-1 at once. The first failure cancels the
// others (errgroup.WithContext); the errors that are not a consequence of
// that are returned.
func parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	errs := make([]error, n)
	for i := range n {
		g.Go(func() error {
			errs[i] = f(ctx, i)
			return errs[i]
		})
	}
	_ = g.Wait() // every error is in errs
	var real []error
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			real = append(real, err)
		}
	}
	if len(real) > 0 {
		return joinErrs(real)
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// joinErrs joins errors into one line.
func joinErrs(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	// The same error met by every node is said once.
	seen := map[string]bool{errs[0].Error(): true}
	var more []string
	for _, e := range errs[1:] {
		if msg := e.Error(); !seen[msg] {
			seen[msg] = true
			more = append(more, msg)
		}
	}
	if len(more) == 0 {
		return errs[0]
	}
	return fmt.Errorf("%w (and %d more: %s)", errs[0], len(more), strings.Join(more, "; "))
}

func makeWorkspace(p *plan) error {
	if err := os.MkdirAll(filepath.Dir(p.workspace), 0o755); err != nil {
		return fmt.Errorf("making the workspace: %w", err)
	}
	// Mkdir, not MkdirAll: the directory must be new, made here, before its
	// marker says it is e2e's to remove.
	if err := os.Mkdir(p.workspace, 0o755); err != nil {
		return fmt.Errorf("making the workspace: %w", err)
	}
	var marker strings.Builder
	labels := p.commonLabels()
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		fmt.Fprintf(&marker, "%s=%s\n", k, labels[k])
	}
	if err := os.WriteFile(filepath.Join(p.workspace, workspaceMarker), []byte(marker.String()), 0o644); err != nil {
		return fmt.Errorf("making the workspace: %w", err)
	}
	return nil
}

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

// bootScript waits until systemd has finished booting and prints its
// state. systemctl cannot connect until systemd has made its private
// socket, a moment after the container starts; until then the script only
// looks for the socket, which costs next to nothing.
const bootScript = `i=0
while [ $i -lt 6000 ]; do
  if [ -S /run/systemd/private ]; then
    s=$(systemctl is-system-running --wait 2>/dev/null)
    case "$s" in
    running) echo running; exit 0 ;;
    degraded)
      echo degraded
      systemctl is-active multi-user.target
      systemctl --failed --plain --no-legend --no-pager | awk '{print $1}' | tr '\n' ' '
      exit 0 ;;
    maintenance|stopping) echo "$s"; exit 1 ;;
    esac
  fi
  i=$((i+1))
  sleep 0.02
done
echo "$s"
exit 1
`

// waitBooted waits, bounded, until systemd on a node is running (or
// degraded, with multi-user.target active).
func waitBooted(ctx context.Context, cli *client.Client, id, name string, r sdk.Reporter) error {
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	var out bytes.Buffer
	code, err := execIn(ctx, cli, id, execSpec{argv: []string{"sh", "-c", bootScript}, stdout: &out, stderr: io.Discard})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return fmt.Errorf("%s: systemd did not finish booting within %s (see `docker logs %s`)", name, bootTimeout, name)
		}
		return fmt.Errorf("waiting for %s to boot: %w", name, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	state := lines[0]
	if code != 0 {
		return fmt.Errorf("%s: systemd did not boot (state %q; see `docker logs %s`)", name, state, name)
	}
	if state == "degraded" {
		if len(lines) < 2 || lines[1] != "active" {
			return fmt.Errorf("%s: systemd is degraded and multi-user.target is not active (see `docker logs %s`)", name, name)
		}
		failed := ""
		if len(lines) > 2 {
			failed = strings.TrimSpace(lines[2])
		}
		r.Warnf("%s: systemd is degraded (failed units: %s); multi-user.target is active", name, failed)
	}
	return nil
}
