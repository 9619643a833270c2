package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/e2e-tool/e2e/sdk"
)

// Labels that say which process is creating a cluster, so that clean
// leaves a creation in progress alone.
const (
	labelCreatorHost = "e2e.creator-host"
	labelCreatorPID  = "e2e.creator-pid"
)

// labelStateHome names the e2e state directory whose records own a
// cluster: e2e clean of one state directory leaves the clusters of another
// (another user, another test run) alone.
const labelStateHome = "e2e.state-home"

// creatorLabels name this process as the creator, and the state directory
// of the e2e that started it (sdk.HomeEnv).
func creatorLabels() map[string]string {
	host, _ := os.Hostname()
	labels := map[string]string{labelCreatorHost: host, labelCreatorPID: strconv.Itoa(os.Getpid())}
	if home := os.Getenv(sdk.HomeEnv); home != "" {
		labels[labelStateHome] = home
	}
	return labels
}

// otherHome reports whether a resource belongs to another state directory.
func otherHome(labels map[string]string) bool {
	home, mine := labels[labelStateHome], os.Getenv(sdk.HomeEnv)
	return home != "" && mine != "" && home != mine
}

// creating reports whether the process that made a resource may still be
// creating its cluster: it runs on this host and is alive, or it runs
// elsewhere and the resource is less than an hour old.
func creating(labels map[string]string, created time.Time) bool {
	pid, err := strconv.Atoi(labels[labelCreatorPID])
	if err != nil || pid <= 0 {
		return false
	}
	host, _ := os.Hostname()
	if labels[labelCreatorHost] != host {
		return time.Since(created) < time.Hour
	}
	if pid == os.Getpid() {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		// No /proc: trust the signal check.
		return true
	}
	argv0, _, _ := strings.Cut(string(cmdline), "\x00")
	return strings.HasPrefix(filepath.Base(argv0), "e2e-backend-docker")
}

// removeCluster removes the containers (with their volumes), networks and
// volumes of cluster id (of one creation when uid is not empty), then the
// workspace directories their labels name and the extra ones given. What
// is already gone is fine. report, if not nil, is told of each removal.
func removeCluster(ctx context.Context, cli *client.Client, id, uid string, workspaces []string, report func(kind, name string)) error {
	if report == nil {
		report = func(string, string) {}
	}
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: clusterFilter(id, uid)})
	if err != nil {
		return engineError(fmt.Errorf("listing containers: %w", err))
	}
	for _, c := range cs {
		workspaces = append(workspaces, c.Labels[labelWorkspace])
	}
	// Each kind is tried even when another failed, so that one stuck
	// container does not keep the rest of the cluster alive.
	var errs []error
	if err := removeContainers(ctx, cli, cs, report); err != nil {
		errs = append(errs, err)
	}
	ws, err := removeNetworks(ctx, cli, id, uid, func(name string) { report("network", name) })
	if err != nil {
		errs = append(errs, err)
	}
	workspaces = append(workspaces, ws...)
	vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: clusterFilter(id, uid)})
	if err != nil {
		errs = append(errs, engineError(fmt.Errorf("listing volumes: %w", err)))
		vols = volume.ListResponse{}
	}
	for _, v := range vols.Volumes {
		if err := cli.VolumeRemove(ctx, v.Name, true); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing volume %s: %w", v.Name, err))
		}
	}
	for _, w := range dedupe(workspaces) {
		removed, err := removeWorkspace(w, id, uid)
		if err != nil {
			errs = append(errs, err)
		} else if removed {
			report("workspace", w)
		}
	}
	return joinErrs(errs)
}

// removeContainers force-removes containers and their anonymous volumes,
// all at once.
func removeContainers(ctx context.Context, cli *client.Client, cs []container.Summary, report func(kind, name string)) error {
	return parallel(ctx, len(cs), func(ctx context.Context, i int) error {
		c := cs[i]
		name := strings.TrimPrefix(firstName(c), "/")
		err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) && !strings.Contains(err.Error(), "already in progress") {
			return fmt.Errorf("removing container %s: %w", name, err)
		}
		report("container", name)
		return nil
	})
}

func firstName(c container.Summary) string {
	if len(c.Names) > 0 {
		return c.Names[0]
	}
	return c.ID[:12]
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// removeWorkspace removes a cluster's workspace directory, only when its
// marker file proves e2e made it for cluster id (and for the creation uid,
// when uid is not empty). A directory without the marker is never removed,
// whatever its name: users keep their own data in the same places.
func removeWorkspace(dir, id, uid string) (bool, error) {
	if !filepath.IsAbs(dir) {
		return false, nil
	}
	labels, ok := readMarker(dir)
	if !ok || labels[labelClusterID] != id || (uid != "" && labels[labelUID] != uid) {
		return false, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return false, fmt.Errorf("removing workspace %s: %w", dir, err)
	}
	return true, nil
}

// Destroy removes the cluster's containers, their volumes, the network
// made for it (never one the user gave) and its workspace. Destroying what
// is gone, or half made, succeeds.
func (backend) Destroy(ctx context.Context, ref sdk.ClusterRef, r sdk.Reporter) error {
	// A destroy that has begun finishes even if e2e goes away (killed, or
	// its stream broken): a half-removed cluster helps nobody. Bounded.
	ctx, cancel := sdk.CleanupContext(ctx)
	defer cancel()
	cli, err := newClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	err = removeCluster(ctx, cli, ref.ClusterID, ref.UID, nil, func(kind, name string) {
		r.Progress("remove", kind+" "+name, 0, 0)
	})
	if err != nil {
		return fmt.Errorf("destroying cluster %q: %w", ref.ClusterID, err)
	}
	return nil
}

// Clean removes everything labelled by e2e that belongs to none of the
// keep clusters, or with dryRun only reports it: containers, networks,
// volumes and workspace directories. A creation still in progress (its
// creating process is alive) is left alone.
func (backend) Clean(ctx context.Context, keep []sdk.ClusterRef, dryRun bool, r sdk.Reporter) error {
	cli, err := newClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	keepUID, keepID := map[string]bool{}, map[string]bool{}
	roots := []string{os.TempDir()}
	for _, k := range keep {
		if k.UID != "" {
			keepUID[k.UID] = true
		} else {
			// A record without a UID (a retained failed creation) keeps
			// every creation of its id.
			keepID[k.ClusterID] = true
		}
		if ws := workspaceRoot(k.Options); ws != "" {
			roots = append(roots, ws)
		}
	}
	kept := func(labels map[string]string) bool {
		return keepUID[labels[labelUID]] || keepID[labels[labelClusterID]] || otherHome(labels)
	}
	all := clusterFilter("", "")

	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: all})
	if err != nil {
		return engineError(fmt.Errorf("listing containers: %w", err))
	}
	busy := map[string]bool{} // uids being created right now
	var orphans []container.Summary
	var workspaces []string
	for _, c := range cs {
		if kept(c.Labels) {
			continue
		}
		if creating(c.Labels, time.Unix(c.Created, 0)) {
			busy[c.Labels[labelUID]] = true
			continue
		}
		orphans = append(orphans, c)
		workspaces = append(workspaces, c.Labels[labelWorkspace])
	}
	sort.Slice(orphans, func(i, j int) bool { return firstName(orphans[i]) < firstName(orphans[j]) })
	for _, c := range orphans {
		r.Infof("container %s (cluster %s)", strings.TrimPrefix(firstName(c), "/"), c.Labels[labelClusterID])
	}
	var errs []error
	if !dryRun {
		if err := removeContainers(ctx, cli, orphans, func(string, string) {}); err != nil {
			errs = append(errs, err)
		}
	}

	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: all})
	if err != nil {
		return engineError(fmt.Errorf("listing networks: %w", err))
	}
	sort.Slice(nets, func(i, j int) bool { return nets[i].Name < nets[j].Name })
	for _, n := range nets {
		if kept(n.Labels) || busy[n.Labels[labelUID]] || creating(n.Labels, n.Created) {
			continue
		}
		workspaces = append(workspaces, n.Labels[labelWorkspace])
		r.Infof("network %s (cluster %s)", n.Name, n.Labels[labelClusterID])
		if dryRun {
			continue
		}
		if err := cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing network %s: %w", n.Name, err))
		}
	}

	vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: all})
	if err != nil {
		return engineError(fmt.Errorf("listing volumes: %w", err))
	}
	sort.Slice(vols.Volumes, func(i, j int) bool { return vols.Volumes[i].Name < vols.Volumes[j].Name })
	for _, v := range vols.Volumes {
		if kept(v.Labels) || busy[v.Labels[labelUID]] {
			continue
		}
		// Volumes of containers being created carry no creator label;
		// one whose container is kept or busy is skipped above by uid.
		r.Infof("volume %s (cluster %s)", v.Name, v.Labels[labelClusterID])
		if dryRun {
			continue
		}
		if err := cli.VolumeRemove(ctx, v.Name, true); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing volume %s: %w", v.Name, err))
		}
	}

	// Workspaces named by orphans' labels, and marked ones in the
	// workspace roots whose cluster is gone.
	for _, root := range dedupe(roots) {
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			if e.IsDir() && strings.HasPrefix(e.Name(), "e2e-") {
				workspaces = append(workspaces, filepath.Join(root, e.Name()))
			}
		}
	}
	for _, w := range dedupe(workspaces) {
		labels, ok := readMarker(w)
		if !ok || kept(labels) || busy[labels[labelUID]] || creating(labels, markerTime(w)) {
			continue
		}
		r.Infof("workspace %s (cluster %s)", w, labels[labelClusterID])
		if dryRun {
			continue
		}
		if _, err := removeWorkspace(w, labels[labelClusterID], labels[labelUID]); err != nil {
			errs = append(errs, err)
		}
	}
	return joinErrs(errs)
}

// workspaceRoot is the workspace_dir option of stored options, if any.
func workspaceRoot(opts sdk.Options) (root string) {
	defer func() {
		// Options without a schema (none were stored) have no value.
		if recover() != nil {
			root = ""
		}
	}()
	if ws := opts.String(optWorkspaceDir); ws != "" {
		if abs, err := filepath.Abs(ws); err == nil {
			return abs
		}
	}
	return ""
}

// readMarker reads the labels a workspace's marker file records.
func readMarker(dir string) (map[string]string, bool) {
	f, err := os.Open(filepath.Join(dir, workspaceMarker))
	if err != nil {
		return nil, false
	}
	defer f.Close()
	labels := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			labels[k] = v
		}
	}
	return labels, labels[labelUID] != ""
}

func markerTime(dir string) time.Time {
	st, err := os.Stat(filepath.Join(dir, workspaceMarker))
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}
