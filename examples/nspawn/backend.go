package main

// The calls of the backend: Create, Get, List, Destroy, Clean, Start, Stop.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/e2e-tool/e2e/sdk"
)

// stopGrace is how long a machine may take to shut down cleanly before it
// is killed.
const stopGrace = 20 * time.Second

// Create makes the cluster's directory and marker first, leases an address
// per node, writes each node's own files, boots every machine and waits for
// their sshd. On failure or cancellation it removes what it made (unless
// req.Retain).
func (b backend) Create(ctx context.Context, req sdk.CreateRequest, r sdk.Reporter) (*sdk.Cluster, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the nspawn backend needs root (systemd-nspawn and overlay mounts): run e2e as root")
	}
	if strings.ContainsAny(req.Options.String(optImage), ",:") {
		return nil, fmt.Errorf("option %q: %q contains ',' or ':', which an overlay mount cannot take: move the image", optImage, req.Options.String(optImage))
	}
	subnet, err := parseSubnet(req.Options.String(optSubnet))
	if err != nil {
		return nil, fmt.Errorf("option %q: %w", optSubnet, err)
	}
	user := req.SSHUser
	if user == "" {
		user = "root"
	}
	// A login user the image lacks is bad input (--ssh-user): refused
	// before anything is made.
	if _, _, _, err := imageUser(req.Options.String(optImage), user); err != nil {
		return nil, &sdk.DiagnosticsError{Diagnostics: []sdk.Diagnostic{{Severity: sdk.SeverityError, Summary: err.Error()}}}
	}
	uid := make([]byte, 8)
	_, _ = rand.Read(uid) // never fails (crypto/rand)
	rec := &record{
		ID: req.ClusterID, UID: hex.EncodeToString(uid), CreatedAt: time.Now().UTC().Truncate(time.Second),
		Image: req.Options.String(optImage),
		dir:   filepath.Join(clustersDir(req.Options.String(optDir)), req.ClusterID),
	}
	for _, role := range sdk.Roles() {
		for i := range req.Count(role) {
			rec.Nodes = append(rec.Nodes, nodeRecord{
				Role: role, Index: i, Hostname: sdk.NodeHostname(req.ClusterID, role, i),
				Port: req.Options.Int(optSSHPort), User: user,
			})
		}
	}
	if len(rec.Nodes) == 0 {
		return nil, errors.New("a cluster needs at least one node")
	}
	if err := os.MkdirAll(clustersDir(req.Options.String(optDir)), 0o755); err != nil {
		return nil, fmt.Errorf("option %q: %w", optDir, err)
	}
	// Mkdir, not MkdirAll: of two creates of one id, only one gets here.
	if err := os.Mkdir(rec.dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("cluster %q already exists in %s: destroy it first", req.ClusterID, rec.dir)
		}
		return nil, fmt.Errorf("option %q: %w", optDir, err)
	}
	if err := writeRecord(rec); err != nil {
		_ = os.Remove(rec.dir)
		return nil, err
	}
	c, err := b.build(ctx, rec, req, subnet, r)
	if err == nil {
		return c, nil
	}
	if req.Retain {
		r.Warnf("keeping what was made of cluster %s for debugging (--retain): %s", rec.ID, rec.dir)
		return nil, err
	}
	cctx, cancel := sdk.CleanupContext(ctx)
	defer cancel()
	if cerr := destroyRecord(cctx, rec); cerr != nil {
		return nil, fmt.Errorf("%w (and removing what was made failed: %v)", err, cerr)
	}
	return nil, err
}

// build does the work of Create once the marker exists.
func (backend) build(ctx context.Context, rec *record, req sdk.CreateRequest, subnet netip.Prefix, r sdk.Reporter) (*sdk.Cluster, error) {
	r.Progress("addresses", "leasing node addresses", 0, 0)
	if err := leaseAddresses(rec, subnet, req.Options.Int(optSSHPort)); err != nil {
		return nil, err
	}
	if err := writeRecord(rec); err != nil {
		return nil, err
	}
	for i, n := range rec.Nodes {
		key, err := nodeFiles(rec, n, req.SSHPublicKey)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Hostname, err)
		}
		rec.Nodes[i].HostKey = key
	}
	if err := writeRecord(rec); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := bootAll(ctx, rec, req.Options.Duration(optBootTimeout), r); err != nil {
		return nil, err
	}
	return rec.cluster(), nil
}

// bootAll starts every node of rec that does not run and waits for all
// their sshd, in parallel; the error joins every node's.
func bootAll(ctx context.Context, rec *record, timeout time.Duration, r sdk.Reporter) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		done int64
	)
	total := int64(len(rec.Nodes))
	for _, n := range rec.Nodes {
		if machinePID(rec, n) > 0 {
			mu.Lock()
			done++
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A machine of an earlier boot whose systemd-nspawn was
			// killed would still hold the node's address.
			_ = stopMachine(ctx, rec, n, 0)
			exited, err := launch(rec, n)
			if err == nil {
				err = waitSSH(ctx, rec, n, exited, timeout)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			done++
			r.Progress("boot", "node "+n.Hostname+" is up at "+n.Address, done, total)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// Get returns the cluster with each node's state.
func (backend) Get(_ context.Context, ref sdk.ClusterRef) (*sdk.Cluster, error) {
	rec, err := findRecord(ref.Options.String(optDir), ref.ClusterID, ref.UID)
	if err != nil {
		return nil, err
	}
	return rec.cluster(), nil
}

// List returns every cluster with a marker under the dir option.
func (backend) List(_ context.Context, opts sdk.Options) ([]*sdk.Cluster, error) {
	recs, err := allRecords(opts.String(optDir))
	if err != nil {
		return nil, err
	}
	out := make([]*sdk.Cluster, 0, len(recs))
	for _, rec := range recs {
		out = append(out, rec.cluster())
	}
	return out, nil
}

// Destroy stops the cluster's machines and removes its directory and
// address leases; a cluster that does not exist is destroyed already.
func (backend) Destroy(ctx context.Context, ref sdk.ClusterRef, r sdk.Reporter) error {
	rec, err := findRecord(ref.Options.String(optDir), ref.ClusterID, ref.UID)
	if errors.Is(err, sdk.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	r.Progress("destroy", fmt.Sprintf("stopping %d machines of cluster %s", len(rec.Nodes), rec.ID), 0, 0)
	return destroyRecord(ctx, rec)
}

// destroyRecord stops every machine of rec, releases its addresses and
// removes its directory, the marker last.
func destroyRecord(ctx context.Context, rec *record) error {
	if err := stopAll(ctx, rec); err != nil {
		return err
	}
	if err := releaseAddresses(rec); err != nil {
		return err
	}
	for _, n := range rec.Nodes {
		if err := os.RemoveAll(rec.nodeDir(n)); err != nil {
			return fmt.Errorf("removing node %s: %w", n.Hostname, err)
		}
	}
	if err := os.Remove(filepath.Join(rec.dir, markerName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Only an empty directory goes: anything else in it is not ours.
	if err := os.Remove(rec.dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cluster %s is gone, but %s holds files this backend did not make: %w", rec.ID, rec.dir, err)
	}
	return nil
}

// stopAll stops every machine of rec in parallel.
func stopAll(ctx context.Context, rec *record) error {
	errs := make([]error, len(rec.Nodes))
	var wg sync.WaitGroup
	for i, n := range rec.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = stopMachine(ctx, rec, n, stopGrace)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Clean removes (or with dryRun lists) the clusters under the dir option
// that the core keeps no record of: the leftovers of an e2e that was
// killed.
func (backend) Clean(ctx context.Context, keep []sdk.ClusterRef, dryRun bool, r sdk.Reporter) error {
	// The clusters under the default dir, and under every dir a kept
	// cluster uses.
	dirs := map[string]bool{defaultDir(): true}
	for _, k := range keep {
		dirs[k.Options.String(optDir)] = true
	}
	var errs []error
	for dir := range dirs {
		recs, err := allRecords(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rec := range recs {
			if kept(keep, rec) {
				continue
			}
			if dryRun {
				r.Infof("would remove cluster %s (uid %s): %s", rec.ID, rec.UID, rec.dir)
				continue
			}
			r.Infof("removing cluster %s (uid %s): %s", rec.ID, rec.UID, rec.dir)
			errs = append(errs, destroyRecord(ctx, rec))
		}
	}
	return errors.Join(errs...)
}

// kept reports whether the core has a record of rec.
func kept(keep []sdk.ClusterRef, rec *record) bool {
	for _, k := range keep {
		if k.ClusterID == rec.ID && (k.UID == "" || k.UID == rec.UID) {
			return true
		}
	}
	return false
}

// Start boots the machines of a stopped cluster again, from the files they
// kept.
func (backend) Start(ctx context.Context, ref sdk.ClusterRef, r sdk.Reporter) error {
	rec, err := findRecord(ref.Options.String(optDir), ref.ClusterID, ref.UID)
	if err != nil {
		return err
	}
	return bootAll(ctx, rec, ref.Options.Duration(optBootTimeout), r)
}

// Stop shuts every machine down; their files stay for Start.
func (backend) Stop(ctx context.Context, ref sdk.ClusterRef, r sdk.Reporter) error {
	rec, err := findRecord(ref.Options.String(optDir), ref.ClusterID, ref.UID)
	if err != nil {
		return err
	}
	r.Progress("stop", fmt.Sprintf("stopping %d machines of cluster %s", len(rec.Nodes), rec.ID), 0, 0)
	return stopAll(ctx, rec)
}
