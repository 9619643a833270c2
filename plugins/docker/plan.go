package main

// What Create decides before it makes anything: names, labels, mounts,
// ports and the workspace.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/client"
	"github.com/e2e-tool/e2e/sdk"
)

// workspaceMarker is a file in every workspace directory, so that clean
// removes only directories e2e made.
const workspaceMarker = ".e2e-workspace"

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
	// expires is when the cluster's lifespan ends (created + ttl); zero
	// without a ttl.
	expires time.Time
	nodes   []nodePlan
	opts    sdk.Options
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
	// portOptions is the option each of ports was given with.
	portOptions []string
}

// commonLabels are on every container, network and volume of a creation.
func (p *plan) commonLabels() map[string]string {
	labels := creatorLabels()
	labels[labelManaged] = "true"
	labels[labelClusterID] = p.id
	labels[labelUID] = p.uid
	labels[labelWorkspace] = p.workspace
	if !p.expires.IsZero() {
		labels[labelExpires] = p.expires.Format(time.RFC3339Nano)
	}
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
	switch ttl := opts.Duration(optTTL); {
	case ttl < 0:
		diags = append(diags, ttlDiag(ttl))
	case ttl > 0:
		p.expires = p.created.Add(ttl)
	}
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
	perTarget, err := hostPortMaps(opts.Map(optHostPortMap))
	if err != nil {
		diags = append(diags, sdk.Errorf(optHostPortMap, "option %q: %v", optHostPortMap, err))
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
			p.nodes = append(p.nodes, nodePlan{role: role, index: i, name: containerName(p.id, role, i), mounts: mounts[role]})
		}
	}
	if diags := assignPorts(p, ports, perTarget); len(diags) > 0 {
		return nil, &sdk.DiagnosticsError{Diagnostics: diags}
	}
	return p, nil
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
