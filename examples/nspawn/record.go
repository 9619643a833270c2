package main

// What the backend knows of a cluster lives on disk, under the dir option:
//
//	DIR/clusters/ID/e2e-nspawn-cluster.json   the marker: id, uid, nodes
//	DIR/clusters/ID/ROLE-INDEX/upper, work    the node's overlay layers
//	DIR/clusters/ID/ROLE-INDEX/rootfs         where its overlay is mounted
//	DIR/clusters/ID/ROLE-INDEX/console.log    systemd-nspawn's output
//	DIR/clusters/ID/ROLE-INDEX/pid            the systemd-nspawn process
//
// The marker is written before anything else of the cluster and removed
// last: a directory without one was not made by this backend, and nothing
// removes it.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/e2e-tool/e2e/sdk"
)

// markerName is the marker file of a cluster directory; no user names a
// file this way.
const markerName = "e2e-nspawn-cluster.json"

// record is the marker's content.
type record struct {
	ID        string       `json:"id"`
	UID       string       `json:"uid"`
	CreatedAt time.Time    `json:"created_at"`
	Image     string       `json:"image"`
	Nodes     []nodeRecord `json:"nodes"`
	// dir is the cluster directory the marker was read from (not stored).
	dir string
}

// nodeRecord is one node of a record.
type nodeRecord struct {
	Role     sdk.Role `json:"role"`
	Index    int      `json:"index"`
	Hostname string   `json:"hostname"`
	// Address is the node's loopback address; empty until leased.
	Address string `json:"address,omitempty"`
	Port    int    `json:"port"`
	User    string `json:"user"`
	// HostKey is the public host key (authorized_keys format).
	HostKey string `json:"host_key,omitempty"`
}

// dirName is the node's directory inside the cluster directory.
func (n nodeRecord) dirName() string { return string(n.Role) + "-" + strconv.Itoa(n.Index) }

// clustersDir is where the cluster directories of a dir option live.
func clustersDir(dir string) string { return filepath.Join(dir, "clusters") }

// nodeDir is a node's directory.
func (rec *record) nodeDir(n nodeRecord) string { return filepath.Join(rec.dir, n.dirName()) }

// writeRecord writes the marker atomically (a temporary file renamed).
func writeRecord(rec *record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(rec.dir, "."+markerName+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("writing the marker of cluster %q: %w", rec.ID, err)
	}
	if err := os.Rename(tmp, filepath.Join(rec.dir, markerName)); err != nil {
		return fmt.Errorf("writing the marker of cluster %q: %w", rec.ID, err)
	}
	return nil
}

// readRecord reads the marker of a cluster directory; errors wrap
// fs.ErrNotExist when there is none.
func readRecord(clusterDir string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(clusterDir, markerName))
	if err != nil {
		return nil, err
	}
	rec := &record{}
	if err := json.Unmarshal(b, rec); err != nil {
		return nil, fmt.Errorf("marker %s is damaged (%v): remove the directory by hand", filepath.Join(clusterDir, markerName), err)
	}
	rec.dir = clusterDir
	return rec, nil
}

// findRecord returns the record of cluster id under dir, or sdk.ErrNotFound
// when there is none, or when uid is not empty and differs (a later
// cluster of the same id).
func findRecord(dir, id, uid string) (*record, error) {
	if err := sdk.ValidateClusterID(id); err != nil {
		return nil, err
	}
	rec, err := readRecord(filepath.Join(clustersDir(dir), id))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("cluster %q: %w", id, sdk.ErrNotFound)
	case err != nil:
		return nil, err
	case rec.ID != id || (uid != "" && rec.UID != uid):
		return nil, fmt.Errorf("cluster %q (uid %s): %w", id, uid, sdk.ErrNotFound)
	}
	return rec, nil
}

// allRecords returns the records of every cluster under dir; directories
// without a marker are skipped.
func allRecords(dir string) ([]*record, error) {
	entries, err := os.ReadDir(clustersDir(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var recs []*record
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		rec, err := readRecord(filepath.Join(clustersDir(dir), e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// cluster is what the core sees of a record: nodes with their addresses,
// host keys and whether each runs now.
func (rec *record) cluster() *sdk.Cluster {
	c := &sdk.Cluster{
		ID: rec.ID, UID: rec.UID, CreatedAt: rec.CreatedAt,
		Details: map[string]string{"image": rec.Image, "dir": rec.dir},
	}
	for _, n := range rec.Nodes {
		node := sdk.Node{
			Role: n.Role, Index: n.Index, Name: n.Hostname, Hostname: n.Hostname,
			PrivateAddress: n.Address,
			SSH:            sdk.SSHEndpoint{Host: n.Address, Port: n.Port, User: n.User},
			State:          nodeState(rec, n),
		}
		if n.HostKey != "" {
			node.HostKeys = []string{n.HostKey}
		}
		c.Nodes = append(c.Nodes, node)
	}
	return c
}

// nodeState says whether a node's machine runs: its systemd-nspawn process
// lives (running), or only its files are left (stopped), or not even
// those (missing).
func nodeState(rec *record, n nodeRecord) sdk.NodeState {
	if _, err := os.Stat(rec.nodeDir(n)); err != nil {
		return sdk.NodeMissing
	}
	if pid := machinePID(rec, n); pid > 0 {
		return sdk.NodeRunning
	}
	return sdk.NodeStopped
}
