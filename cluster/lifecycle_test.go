package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/cluster/script"
)

// TestStopStartFromGo: a stopped cluster shows every node stopped, a
// command on one fails at once saying what to do, and Start brings it back.
func TestStopStartFromGo(t *testing.T) {
	ctx := context.Background()
	m := newManager(t)
	machines := t.TempDir()
	if _, err := m.Create(ctx, cluster.Spec{Backend: "test", ID: "sleepy", Masters: 1, Agents: 2, PublicAgents: cluster.None,
		Options: map[string]any{"dir": machines}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Destroy(context.Background(), "sleepy") })

	for i := 1; i <= 2; i++ { // Stop is idempotent
		if err := m.Stop(ctx, "sleepy"); err != nil {
			t.Fatalf("Stop (call %d): %v", i, err)
		}
	}
	c, err := m.Get(ctx, "sleepy")
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != "stopped" {
		t.Errorf("Status = %q, want stopped", c.Status)
	}
	for _, n := range c.Nodes {
		if n.State != cluster.NodeStopped || n.Running() {
			t.Errorf("%s: state %q, want stopped", n.ID(), n.State)
		}
	}
	agent, err := c.Node("agent_1")
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	_, err = agent.Run(ctx, cluster.Command{Argv: []string{"true"}})
	var sshErr *cluster.SSHError
	var notRunning *cluster.NotRunningError
	if !errors.As(err, &sshErr) || !errors.As(err, &notRunning) {
		t.Fatalf("Run on a stopped node: %v (%T), want an *SSHError with a *NotRunningError", err, err)
	}
	if want := "agent_1 of cluster \"sleepy\" is stopped: start it with `e2e start -c sleepy`"; err.Error() != want {
		t.Errorf("Run on a stopped node: %q, want %q", err, want)
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("Run on a stopped node took %s, want an answer at once", d)
	}
	if err := agent.Upload(ctx, t.TempDir(), "/tmp/x", nil); !errors.As(err, &notRunning) {
		t.Errorf("Upload to a stopped node: %v, want a *NotRunningError", err)
	}
	if err := agent.Download(ctx, "/etc/hostname", t.TempDir(), nil); !errors.As(err, &notRunning) {
		t.Errorf("Download from a stopped node: %v, want a *NotRunningError", err)
	}
	if err := script.Install(ctx, c, writeScript(t), nil); !errors.As(err, &notRunning) || !strings.Contains(err.Error(), "not running either: agent_0 (stopped), agent_1 (stopped)") {
		t.Errorf("script.Install on a stopped cluster: %v, want a *NotRunningError naming every node", err)
	}

	rows, err := m.List(ctx, cluster.ListOptions{})
	if err != nil || len(rows) != 1 {
		t.Fatalf("List = %+v, %v", rows, err)
	}
	want := map[string]cluster.NodeState{"master_0": cluster.NodeStopped, "agent_0": cluster.NodeStopped, "agent_1": cluster.NodeStopped}
	if rows[0].Status != "stopped" || !maps.Equal(rows[0].Nodes, want) {
		t.Errorf("List row = %+v, want stopped with %v", rows[0], want)
	}

	for i := 1; i <= 2; i++ { // Start is idempotent
		if err := m.Start(ctx, "sleepy"); err != nil {
			t.Fatalf("Start (call %d): %v", i, err)
		}
	}
	if c, err = m.Get(ctx, "sleepy"); err != nil || c.Status != "running" {
		t.Fatalf("Get after Start: status %q, %v; want running", c.Status, err)
	}
	for _, n := range c.Nodes {
		if n.State != cluster.NodeRunning || n.SSH.Port == 0 {
			t.Errorf("%s after Start: state %q, SSH port %d", n.ID(), n.State, n.SSH.Port)
		}
	}
}

// TestMissingNode: a node the backend no longer reports is shown missing,
// and the cluster degraded.
func TestMissingNode(t *testing.T) {
	ctx := context.Background()
	m := newManager(t)
	machines := t.TempDir()
	if _, err := m.Create(ctx, cluster.Spec{Backend: "test", ID: "holey", Masters: 1, Agents: 2, PublicAgents: cluster.None,
		Options: map[string]any{"dir": machines}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Destroy(context.Background(), "holey") })
	// Fault injection: the test backend's record loses agent_0.
	path := filepath.Join(machines, "clusters", "holey", "cluster.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	nodes := rec["Cluster"]["nodes"].([]any)
	rec["Cluster"]["nodes"] = append(nodes[:1], nodes[2:]...)
	if b, err = json.Marshal(rec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}

	c, err := m.Get(ctx, "holey")
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != "degraded (1 of 3 nodes not running)" {
		t.Errorf("Status = %q", c.Status)
	}
	n, err := c.Node("agent_0")
	if err != nil {
		t.Fatalf("the missing node is not shown: %v", err)
	}
	if n.State != cluster.NodeMissing || n.SSH.Port != 0 || n.Name != "e2e-holey-agent-0" {
		t.Errorf("agent_0 = %+v, want missing, no SSH port, its recorded name", n)
	}
	_, err = n.Run(ctx, cluster.Command{Argv: []string{"true"}})
	if err == nil || !strings.Contains(err.Error(), "agent_0 of cluster \"holey\" is missing") {
		t.Errorf("Run on a missing node: %v", err)
	}
	// Start cannot bring back what is gone, and says so.
	if err := m.Start(ctx, "holey"); err == nil || !strings.Contains(err.Error(), "did not start every node: agent_0 of cluster \"holey\" is missing") {
		t.Errorf("Start with a missing node: %v", err)
	}
}

func writeScript(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "install.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\ntrue\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
