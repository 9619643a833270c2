package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// workspaceMarker is the file that proves a workspace directory is the
// one e2e made for a cluster: only such a directory is ever removed.
const workspaceMarker = ".e2e-workspace"

// makeWorkspace makes the cluster's workspace directory e2e-ID-UID inside
// root, with its marker.
func makeWorkspace(root, id, uid string) (string, error) {
	dir := filepath.Join(root, resourceName(id, uid))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("making the workspace: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, workspaceMarker), []byte(markerText(id, uid)), 0o600); err != nil {
		return "", fmt.Errorf("making the workspace: %w", err)
	}
	return dir, nil
}

func markerText(id, uid string) string { return "cluster-id=" + id + "\ncluster-uid=" + uid + "\n" }

// removeWorkspace removes dir when its marker names the cluster (and its
// UID, when given); a directory that is gone, or not on this machine, is
// left as it is.
func removeWorkspace(dir, id, uid string) error {
	b, err := os.ReadFile(filepath.Join(dir, workspaceMarker))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing workspace %s: %w", dir, err)
	}
	text := string(b)
	if !strings.Contains(text, "cluster-id="+id+"\n") || (uid != "" && !strings.Contains(text, "cluster-uid="+uid+"\n")) {
		return nil // another cluster's
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing workspace %s: %w", dir, err)
	}
	return nil
}
