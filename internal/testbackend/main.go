// Command e2e-backend-test is a backend plugin for e2e's own tests. Its
// "machines" are files in a directory, and options inject faults: a slow
// create (to cancel), a crash half-way, a panic. It is built by the tests
// and never shipped.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/e2e-tool/e2e/sdk"
)

// Set with -ldflags.
var version = "0.0.0-test"

type backend struct{}

func (backend) Info() sdk.Info {
	return sdk.Info{
		Name:    "test",
		Version: version,
		Summary: "files that stand in for machines (e2e's own tests)",
		// Its calls are the interfaces it implements: Destroyer, Lister,
		// Cleaner, StartStopper, BaseConfiger. Its nodes have no sshd,
		// unless $E2E_TEST_BACKEND_SSHD names a pool of real ones (sshd.go).
		NodesRunSSHD:   os.Getenv(sshdPoolEnv) != "",
		InstallMethods: []sdk.InstallMethod{sdk.InstallFromPath},
		Options: sdk.Schema{
			sdk.StringOption("dir", "directory that holds the stand-in machines").MarkRequired().FromEnv("E2E_TEST_BACKEND_DIR"),
			sdk.DurationOption("create_delay", "pause after each node is made").WithDefault("0s"),
			sdk.DurationOption("cleanup_delay", "pause before a cancelled create removes what it made").WithDefault("300ms"),
			sdk.IntOption("crash_after_nodes", "exit abruptly after making this many nodes (-1: never)").WithDefault(-1),
			sdk.BoolOption("panic_in_create", "panic inside Create"),
			sdk.BoolOption("two_steps", "report \"boot nodes\" after each node is made, interleaved with \"create nodes\" as the steps of nodes made in parallel are"),
			sdk.StringOption("token", "a secret, to test that secrets are never stored").MarkSecret("E2E_TEST_TOKEN"),
			sdk.IntOption("pin", "a secret number, to test that a secret's value is never repeated").MarkSecret("E2E_TEST_PIN"),
			sdk.MapOption("labels", "labels recorded on every node"),
			sdk.ListOption("tags", "tags recorded on the cluster"),
			sdk.MountsOption("master_mounts", "mounts recorded on masters"),
			sdk.IntOption("memory", "memory per node in MiB").WithDefault(512),
			sdk.StringOption("ssh_fault", "a bug to have with a pool of sshd nodes: wrong_host_key, keep_nodes (Destroy forgets the cluster but leaves the nodes), leak_on_cancel (Create ignores cancellation, Destroy matches the UID only)"),
		},
	}
}

type record struct {
	Cluster sdk.Cluster
	Options map[string]any
	// Key is the SSH key authorised on the sshd pool's nodes (sshd.go).
	Key string `json:",omitempty"`
}

func clusterDir(opts sdk.Options, id string) string {
	return filepath.Join(opts.String("dir"), "clusters", id)
}

func (b backend) Create(ctx context.Context, req sdk.CreateRequest, r sdk.Reporter) (*sdk.Cluster, error) {
	opts := req.Options
	if opts.Bool("panic_in_create") {
		panic("injected panic")
	}
	dir := clusterDir(opts, req.ClusterID)
	if _, err := os.Stat(dir); err == nil {
		return nil, fmt.Errorf("cluster %q exists already", req.ClusterID)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// The tests read the pid to check that no plugin process is left.
	if err := os.WriteFile(filepath.Join(opts.String("dir"), "create.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	uid := make([]byte, 8)
	_, _ = rand.Read(uid)
	c := &sdk.Cluster{ID: req.ClusterID, UID: hex.EncodeToString(uid), CreatedAt: time.Now().UTC(),
		Details: map[string]string{"dir": dir, "memory": strconv.Itoa(opts.Int("memory"))}}
	if home := os.Getenv(sdk.HomeEnv); home != "" {
		c.Details[sdk.HomeDetail] = home
	}
	total := int64(req.Masters + req.Agents + req.PublicAgents)
	made := 0
	for _, role := range sdk.Roles() {
		for i := 0; i < req.Count(role); i++ {
			if n := opts.Int("crash_after_nodes"); n >= 0 && made >= n {
				// Straight to fd 2, as the Go runtime reports a real crash.
				fmt.Fprintf(os.NewFile(2, "stderr"), "injected crash after %d nodes\n", made)
				os.Exit(3)
			}
			name := fmt.Sprintf("e2e-%s-%s-%d", req.ClusterID, role, i)
			node := sdk.Node{Role: role, Index: i, Name: name, Hostname: name,
				PrivateAddress: fmt.Sprintf("10.%d.0.%d", len(c.Nodes)/250, len(c.Nodes)%250+1),
				SSH:            sdk.SSHEndpoint{Host: "127.0.0.1", Port: 22, User: "root"}}
			if err := pooledNode(&node, len(c.Nodes), req.SSHPublicKey, opts.String("ssh_fault")); err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(req.SSHPublicKey), 0o644); err != nil {
				return nil, err
			}
			c.Nodes = append(c.Nodes, node)
			made++
			r.Progress("create nodes", name, int64(made), total)
			if opts.Bool("two_steps") {
				r.Progress("boot nodes", name, int64(made), total)
			}
			if opts.String("ssh_fault") == faultLeakOnCancel {
				time.Sleep(opts.Duration("create_delay"))
				continue
			}
			select {
			case <-time.After(opts.Duration("create_delay")):
			case <-ctx.Done():
				_ = unpool(c.Nodes, req.SSHPublicKey)
				return nil, b.cancelled(ctx, req, dir)
			}
		}
	}
	rec := record{Cluster: *c}
	if os.Getenv(sshdPoolEnv) != "" {
		rec.Key = req.SSHPublicKey
	}
	buf, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster.json"), buf, 0o644); err != nil {
		return nil, err
	}
	r.Infof("made %d nodes in %s", made, dir)
	return c, nil
}

// cancelled leaves a marker the tests look for, then removes what was made.
func (backend) cancelled(ctx context.Context, req sdk.CreateRequest, dir string) error {
	ctx, cancel := sdk.CleanupContext(ctx)
	defer cancel()
	sdk.Logger(ctx).Info("create cancelled; cleaning up", "retain", req.Retain)
	marker := filepath.Join(req.Options.String("dir"), req.ClusterID+".cancelled")
	_ = os.WriteFile(marker, []byte("cancelled\n"), 0o644)
	// Slow enough that a host which does not wait would see leftovers.
	time.Sleep(req.Options.Duration("cleanup_delay"))
	if !req.Retain {
		_ = os.RemoveAll(dir)
	}
	return context.Canceled
}

func load(dir string) (*sdk.Cluster, error) {
	rec, err := loadRecord(dir)
	if err != nil {
		return nil, err
	}
	return &rec.Cluster, nil
}

func loadRecord(dir string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, sdk.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// pauseDirEnv names a directory: when it is set, Get, Destroy, Clean,
// Start and Stop leave CALL.paused there and wait until they are
// cancelled, so that a test can interrupt e2e in the middle of any
// command.
const pauseDirEnv = "E2E_TEST_PAUSE_DIR"

func pause(ctx context.Context, call string) error {
	dir := os.Getenv(pauseDirEnv)
	if dir == "" {
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, call+".paused"), nil, 0o644); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

func (backend) Get(ctx context.Context, ref sdk.ClusterRef) (*sdk.Cluster, error) {
	if err := pause(ctx, "get"); err != nil {
		return nil, err
	}
	return load(clusterDir(ref.Options, ref.ClusterID))
}

func (backend) List(_ context.Context, opts sdk.Options) ([]*sdk.Cluster, error) {
	entries, err := os.ReadDir(filepath.Join(opts.String("dir"), "clusters"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*sdk.Cluster
	for _, e := range entries {
		if c, err := load(clusterDir(opts, e.Name())); err == nil {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (backend) Destroy(ctx context.Context, ref sdk.ClusterRef, r sdk.Reporter) error {
	if err := pause(ctx, "destroy"); err != nil {
		return err
	}
	dir := clusterDir(ref.Options, ref.ClusterID)
	fault := ref.Options.String("ssh_fault")
	rec, err := loadRecord(dir)
	switch {
	case errors.Is(err, sdk.ErrNotFound):
		// A Create that crashed or was cancelled half-way wrote no record.
		return os.RemoveAll(dir)
	case err != nil:
		return err
	case fault == faultLeakOnCancel && rec.Cluster.UID != ref.UID:
		return nil
	}
	if fault != faultKeepNodes {
		if err := unpool(rec.Cluster.Nodes, rec.Key); err != nil {
			return err
		}
	}
	r.Progress("destroy", dir, 0, 1)
	return os.RemoveAll(dir)
}

// Clean removes stand-in clusters none of keep owns; the directory comes
// from $E2E_TEST_BACKEND_DIR, as a real backend finds its engine from its
// environment.
func (backend) Clean(ctx context.Context, keep []sdk.ClusterRef, dryRun bool, r sdk.Reporter) error {
	if err := pause(ctx, "clean"); err != nil {
		return err
	}
	dir := os.Getenv("E2E_TEST_BACKEND_DIR")
	if dir == "" {
		return errors.New("E2E_TEST_BACKEND_DIR is not set")
	}
	kept := map[string]bool{}
	for _, k := range keep {
		kept[k.ClusterID] = true
	}
	entries, err := os.ReadDir(filepath.Join(dir, "clusters"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if kept[e.Name()] {
			continue
		}
		path := filepath.Join(dir, "clusters", e.Name())
		if dryRun {
			r.Infof("would remove %s", path)
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			return err
		}
		r.Infof("removed %s", path)
	}
	return nil
}

// Start and Stop make the backend an sdk.StartStopper: a stopped stand-in
// node has no SSH port, as a stopped container has none published.
func (backend) Start(ctx context.Context, ref sdk.ClusterRef, r sdk.Reporter) error {
	if err := pause(ctx, "start"); err != nil {
		return err
	}
	return setState(ref, sdk.NodeRunning, 22, r)
}

func (backend) Stop(ctx context.Context, ref sdk.ClusterRef, r sdk.Reporter) error {
	if err := pause(ctx, "stop"); err != nil {
		return err
	}
	return setState(ref, sdk.NodeStopped, 0, r)
}

// setState puts every node of a cluster in state, with the given SSH port.
func setState(ref sdk.ClusterRef, state sdk.NodeState, port int, r sdk.Reporter) error {
	dir := clusterDir(ref.Options, ref.ClusterID)
	rec, err := loadRecord(dir)
	if err != nil {
		return fmt.Errorf("cluster %q: %w", ref.ClusterID, err)
	}
	c := &rec.Cluster
	for i := range c.Nodes {
		p := port
		if p > 0 {
			if pp, ok := poolPort(i); ok {
				p = pp
			}
		}
		c.Nodes[i].State, c.Nodes[i].SSH.Port = state, p
		r.Progress(string(state), c.Nodes[i].Name, int64(i+1), int64(len(c.Nodes)))
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "cluster.json"), b, 0o644)
}

func (backend) BaseConfig(context.Context, sdk.ClusterRef) (sdk.BaseConfig, error) {
	return sdk.BaseConfig{ConfigYAML: "platform: test\n", IPDetectScript: "#!/bin/sh\necho 127.0.0.1\n"}, nil
}

func main() { sdk.Serve(backend{}) }
