package e2etest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/e2etest"
	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// oneNode is a Docker cluster of one master.
func oneNode() cluster.Spec {
	return cluster.Spec{Backend: "docker", Masters: 1, Agents: cluster.None, PublicAgents: cluster.None}
}

// shared is the cluster TestShared's subtests share.
var shared = e2etest.NewShared(e2etest.Options{Spec: oneNode()})

// world is what TestMain made for the tests: the binaries, and the
// reason there is no Docker engine, if there is none.
type world struct {
	dir       string // short: go-plugin's sockets need short paths
	e2e       string
	pluginDir string
	dockerErr error
}

var w world

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "e2e-et-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	w = world{dir: dir, e2e: filepath.Join(dir, "cli", "e2e"), pluginDir: filepath.Join(dir, "plugins")}
	for _, b := range []struct{ pkg, out string }{
		{"./cmd/e2e", w.e2e},
		{"./plugins/docker", filepath.Join(w.pluginDir, "e2e-backend-docker")},
	} {
		if err := testbin.Compile(b.pkg, b.out, "1.0.0-test"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	w.dockerErr = testbin.DockerEngine()
	// The clusters of this process: its own state directory, the plugin
	// just built.
	os.Setenv("E2E_HOME", filepath.Join(dir, "home"))
	os.Setenv("E2E_PLUGIN_PATH", w.pluginDir)
	return shared.Run(m)
}

func needDocker(t *testing.T) {
	t.Helper()
	testbin.Require(t, "a running Docker engine", w.dockerErr)
}

// containers lists the containers of cluster id on the engine.
func containers(t *testing.T, id string) []string {
	t.Helper()
	out, err := proc.Command(context.Background(), "docker", "ps", "-a", "--format", "{{.Names}}", "--filter", "label=e2e.cluster-id="+id).CombinedOutput()
	if err != nil {
		t.Fatalf("docker ps: %v: %s", err, out)
	}
	return strings.Fields(string(out))
}

// reapersOf returns the running reaper processes of cluster id that this
// test binary started: copies of itself whose environment carries the
// reaper's configuration naming the cluster.
func reapersOf(t *testing.T, id string) []int {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, pid := range testbin.Processes(exe) {
		env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
		if err != nil || testbin.Gone(pid, 0) {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if strings.HasPrefix(kv, "E2E_TEST_REAPER=") && strings.Contains(kv, `"id":"`+id+`"`) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// TestNew: a test gets a cluster of its own, named after it, with a
// reaper beside it; when the test ends, the cluster and the reaper are gone.
func TestNew(t *testing.T) {
	needDocker(t)
	var (
		c         *cluster.Cluster
		reaperPID []int
	)
	t.Run("uses", func(t *testing.T) {
		c = e2etest.New(t, e2etest.Options{Spec: oneNode()})
		if !strings.HasPrefix(c.ID, "testnew-uses-") || cluster.ValidateID(c.ID) != nil {
			t.Errorf("cluster id %q, want a valid id made from the test's name", c.ID)
		}
		out, err := c.Masters()[0].Output(t.Context(), "hostname")
		if err != nil || strings.TrimSpace(string(out)) != "e2e-"+c.ID+"-master-0" {
			t.Errorf("hostname on master_0: %q, %v", out, err)
		}
		if reaperPID = reapersOf(t, c.ID); len(reaperPID) != 1 {
			t.Errorf("reaper processes: %v, want one", reaperPID)
		}
	})
	if c == nil {
		t.FailNow()
	}
	if left := containers(t, c.ID); len(left) > 0 {
		t.Errorf("after the test, its cluster's containers are still there: %v", left)
	}
	if r := testbin.Run(t, os.Environ(), w.e2e, "list", "--json"); r.Code != 0 || strings.Contains(r.Stdout, c.ID) {
		t.Errorf("after the test, e2e list (exit %d) still shows %s:\n%s%s", r.Code, c.ID, r.Stdout, r.Stderr)
	}
	for _, pid := range reaperPID {
		if !testbin.Gone(pid, 0) {
			t.Errorf("the reaper %d outlived its cluster", pid)
		}
	}
}

// TestShared: the tests of a package share one cluster: what one test
// leaves on it, the next finds.
func TestShared(t *testing.T) {
	needDocker(t)
	var ids []string
	for _, tc := range []struct {
		name string
		argv []string
	}{
		{"writes", []string{"sh", "-c", "echo hello > /root/shared-marker"}},
		{"reads", []string{"cat", "/root/shared-marker"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := shared.Cluster(t)
			ids = append(ids, c.ID)
			if out, err := c.Masters()[0].Output(t.Context(), tc.argv...); err != nil {
				t.Fatalf("%v: %v", tc.argv, err)
			} else if tc.name == "reads" && string(out) != "hello\n" {
				t.Errorf("the second test reads %q, want what the first wrote", out)
			}
		})
	}
	if len(ids) != 2 || ids[0] != ids[1] || !strings.HasPrefix(ids[0], "shared-") {
		t.Errorf("the subtests got clusters %v, want one shared cluster", ids)
	}
	if left := containers(t, ids[0]); !slices.Contains(left, "e2e-"+ids[0]+"-master-0") {
		t.Errorf("the shared cluster's container: %v", left)
	}
}
