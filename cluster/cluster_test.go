package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/testbin"
)

var pluginDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2e-cluster-test-")
	if err != nil {
		panic(err)
	}
	pluginDir = dir
	code := func() int {
		defer os.RemoveAll(dir)
		for _, b := range []struct{ pkg, name string }{
			{"./internal/testbackend", "e2e-backend-test"},
			{"./plugins/docker", "e2e-backend-docker"},
		} {
			if err := testbin.Compile(b.pkg, filepath.Join(dir, b.name), "2.0.0-test"); err != nil {
				os.Stderr.WriteString(err.Error())
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

func newManager(t *testing.T) *cluster.Manager {
	t.Helper()
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("E2E_PLUGIN_PATH", "")
	m, err := cluster.New(cluster.Options{Home: t.TempDir(), PluginDirs: []string{pluginDir}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// TestCreateAndDestroyFromGo is what a Go test author writes.
func TestCreateAndDestroyFromGo(t *testing.T) {
	ctx := context.Background()
	m := newManager(t)
	machines := t.TempDir()

	c, err := m.Create(ctx, cluster.Spec{Backend: "test", ID: "gotest", Masters: 1, Agents: 2, PublicAgents: cluster.None,
		Options: map[string]any{"dir": machines, "tags": []string{"x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Masters()) != 1 || len(c.Agents()) != 2 || len(c.PublicAgents()) != 0 {
		t.Errorf("nodes: %+v", c.Nodes)
	}
	n, err := c.Node("agent_1")
	if err != nil || n.Role != cluster.RoleAgent || n.Index != 1 {
		t.Errorf("Node(agent_1) = %+v, %v", n, err)
	}
	if byName, err := c.Node(n.Name); err != nil || byName.ID() != "agent_1" {
		t.Errorf("Node(%s) = %+v, %v", n.Name, byName, err)
	}
	if _, err := c.Node("agent_7"); !cluster.IsInvalid(err) {
		t.Errorf("Node(agent_7) error = %v, want an InvalidError", err)
	}
	got, err := m.Get(ctx, "gotest")
	if err != nil || got.UID != c.UID || len(got.Nodes) != 3 {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if err := c.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "gotest"); !errors.Is(err, cluster.ErrUnknownCluster) || !cluster.IsInvalid(err) {
		t.Errorf("Get after Destroy: %v, want ErrUnknownCluster", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(machines, "clusters")); len(entries) != 0 {
		t.Errorf("destroy left %d stand-in clusters", len(entries))
	}
}

// TestConcurrentCreateSameID: two creators of one id, one wins.
func TestConcurrentCreateSameID(t *testing.T) {
	ctx := context.Background()
	m := newManager(t)
	machines := t.TempDir()
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = m.Create(ctx, cluster.Spec{Backend: "test", ID: "race",
				Options: map[string]any{"dir": machines, "create_delay": "20ms"}})
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !cluster.IsInvalid(err):
			t.Errorf("loser's error is not a usage error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d creates of the same id succeeded, want 1: %v", wins, errs)
	}
	if entries, _ := os.ReadDir(filepath.Join(machines, "clusters")); len(entries) != 1 {
		t.Errorf("%d stand-in clusters exist, want 1", len(entries))
	}
	if err := m.Destroy(ctx, "race"); err != nil {
		t.Fatal(err)
	}
}

func TestCancelledCreateLeavesNothing(t *testing.T) {
	m := newManager(t)
	machines := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	events := 0
	e2, err := cluster.New(cluster.Options{Home: m.Home(), PluginDirs: []string{pluginDir},
		Events: func(ev cluster.Event) {
			if ev.Step != "" {
				events++
				if events == 2 {
					cancel()
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	_, err = e2.Create(ctx, cluster.Spec{Backend: "test", ID: "cancelled", Agents: 8,
		Options: map[string]any{"dir": machines, "create_delay": "100ms"}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Create error = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(machines, "cancelled.cancelled")); err != nil {
		t.Errorf("the plugin did not see the cancellation: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(machines, "clusters")); len(entries) != 0 {
		t.Errorf("cancelled create left %d stand-in clusters", len(entries))
	}
	if ids, _ := m.IDs(); len(ids) != 0 {
		t.Errorf("cancelled create recorded %v", ids)
	}
}

// TestSpecCountsAsTheCLI: a count left at 0 is not given (one node, as the
// CLI's default), cluster.None asks for no node of a role.
func TestSpecCountsAsTheCLI(t *testing.T) {
	ctx := context.Background()
	m := newManager(t)
	machines := t.TempDir()
	tests := []struct {
		name                   string
		spec                   cluster.Spec
		masters, agents, publc int
	}{
		{"only agents given", cluster.Spec{Agents: 2}, 1, 2, 1},
		{"nothing given", cluster.Spec{}, 1, 1, 1},
		{"none of two roles", cluster.Spec{Masters: cluster.None, Agents: 3, PublicAgents: cluster.None}, 0, 3, 0},
		{"no public agents", cluster.Spec{Masters: 2, PublicAgents: cluster.None}, 2, 1, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec
			spec.Backend, spec.ID = "test", fmt.Sprintf("counts-%d", i)
			spec.Options = map[string]any{"dir": machines}
			c, err := m.Create(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Destroy(context.WithoutCancel(ctx))
			if len(c.Masters()) != tt.masters || len(c.Agents()) != tt.agents || len(c.PublicAgents()) != tt.publc {
				t.Errorf("%d masters, %d agents, %d public agents; want %d, %d, %d",
					len(c.Masters()), len(c.Agents()), len(c.PublicAgents()), tt.masters, tt.agents, tt.publc)
			}
		})
	}
	for _, spec := range []cluster.Spec{
		{Masters: cluster.None, Agents: cluster.None, PublicAgents: cluster.None},
		{Agents: -2},
	} {
		spec.Backend, spec.Options = "test", map[string]any{"dir": machines}
		if _, err := m.Create(ctx, spec); !cluster.IsInvalid(err) {
			t.Errorf("Create(%+v) = %v, want an InvalidError", spec, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(machines, "clusters")); len(entries) != 0 {
		t.Errorf("%d stand-in clusters left", len(entries))
	}
}
