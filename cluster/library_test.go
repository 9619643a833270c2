package cluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// usage is what a process holds that a library must give back.
type usage struct {
	goroutines, fds, children int
}

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, %d open files, %d child processes", u.goroutines, u.fds, u.children)
}

func measure() usage {
	fds, _ := os.ReadDir("/proc/self/fd")
	return usage{goroutines: runtime.NumGoroutine(), fds: len(fds), children: len(children())}
}

// children lists the processes whose parent is this one, zombies too (a
// child not waited for is a leak).
func children() []string {
	all, _ := proc.All()
	var out []string
	for _, st := range all {
		if st.PPID == os.Getpid() {
			out = append(out, fmt.Sprintf("%d (%s)", st.PID, st.State))
		}
	}
	return out
}

// settled measures once what is being closed has wound down (goroutines
// of closed connections end a moment after Close returns), waiting up to
// 5 s for the counts to reach want.
func settled(want usage, slack int) usage {
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		u := measure()
		if (u.goroutines <= want.goroutines+slack && u.fds <= want.fds && u.children <= want.children) || time.Now().After(deadline) {
			return u
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goroutineSlack allows for goroutines that the first use of a library
// starts once per process and keeps (none today; see the test's log): it
// does not grow with the number of clusters, which the comparison of the
// 2nd and the 20th cluster checks with no slack at all.
const goroutineSlack = 2

// TestManyClustersLeaveNothingOpen is a Go program that uses e2e as a
// library: one Manager creates 20 one-node Docker clusters, runs a command
// on each (over SSH, or over the plugin's exec transport for every other
// one) and destroys it. Goroutines, open files and child processes end
// where they started.
func TestManyClustersLeaveNothingOpen(t *testing.T) {
	testbin.RequireDocker(t, "")
	ctx := context.Background()
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("E2E_PLUGIN_PATH", "")
	// The clusters' workspaces go to this test's directory.
	t.Setenv("TMPDIR", t.TempDir())
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	prefix := "lib" + hex.EncodeToString(b)
	t.Cleanup(func() { removeDockerClusters(t, prefix) })

	before := settled(measure(), 0)
	m, err := cluster.New(cluster.Options{Home: t.TempDir(), PluginDirs: []string{pluginDir}})
	if err != nil {
		t.Fatal(err)
	}
	var second usage
	const clusters = 20
	for i := range clusters {
		id := fmt.Sprintf("%s-%d", prefix, i)
		spec := cluster.Spec{Backend: "docker", ID: id, Masters: 1, Agents: cluster.None, PublicAgents: cluster.None}
		transport := "ssh"
		if i%2 == 1 {
			transport = "exec"
			spec.Options = map[string]any{"transport": transport}
		}
		c, err := m.Create(ctx, spec)
		if err != nil {
			m.Close()
			t.Fatalf("cluster %d: %v", i, err)
		}
		out, err := c.Masters()[0].Output(ctx, "hostname")
		if err != nil || strings.TrimSpace(string(out)) != c.Masters()[0].Hostname {
			t.Errorf("cluster %d (%s): hostname = %q, %v; want %q", i, transport, out, err, c.Masters()[0].Hostname)
		}
		if err := c.Destroy(ctx); err != nil {
			m.Close()
			t.Fatalf("destroying cluster %d: %v", i, err)
		}
		if i == 1 {
			// Both transports used once: whatever a Manager keeps for
			// its life is there now.
			second = settled(measure(), 0)
		}
	}
	open := settled(second, 0)
	t.Logf("before the Manager: %s; after 2 clusters: %s; after %d: %s", before, second, clusters, open)
	if open != second {
		t.Errorf("the open Manager grew between the 2nd and the %dth cluster: %s, then %s", clusters, second, open)
		logProcess(t)
	}
	m.Close()
	after := settled(before, goroutineSlack)
	t.Logf("after Manager.Close: %s", after)
	if after.goroutines > before.goroutines+goroutineSlack || after.fds != before.fds || after.children != before.children {
		t.Errorf("before the Manager: %s; after %d clusters and Close: %s", before, clusters, after)
		logProcess(t)
	}
}

// logProcess logs the goroutines, files and children this process holds,
// to tell what leaked.
func logProcess(t *testing.T) {
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
	t.Log(buf.String())
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		t.Logf("fd %s -> %s", fd.Name(), target)
	}
	t.Logf("children: %v", children())
}

// removeDockerClusters removes whatever a failed run of the test left of
// its clusters, found by their e2e.cluster-id labels.
func removeDockerClusters(t *testing.T, prefix string) {
	ctx := context.Background()
	for i := range 20 {
		label := fmt.Sprintf("label=e2e.cluster-id=%s-%d", prefix, i)
		for _, list := range [][]string{
			{"ps", "-aq", "--filter", label},
			{"network", "ls", "-q", "--filter", label},
			{"volume", "ls", "-q", "--filter", label},
		} {
			out, err := proc.Command(ctx, "docker", list...).Output()
			ids := strings.Fields(string(out))
			if err != nil || len(ids) == 0 {
				continue
			}
			rm := map[string][]string{"ps": {"rm", "-f", "-v"}, "network": {"network", "rm"}, "volume": {"volume", "rm"}}[list[0]]
			if out, err := proc.Command(ctx, "docker", append(rm, ids...)...).CombinedOutput(); err != nil {
				t.Errorf("removing what cluster %s-%d left: %v: %s", prefix, i, err, out)
			}
		}
	}
}
