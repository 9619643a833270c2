package e2etest_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/cluster"
	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// helperBin is the test binary of testdata/helper, built once.
var helperBin = sync.OnceValues(func() (string, error) {
	out := filepath.Join(w.dir, "helper.test")
	cmd := proc.Command(context.Background(), "go", "test", "-c", "-o", out, "./e2etest/testdata/helper")
	cmd.Dir = testbin.Root()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{err: err, out: string(b)}
	}
	return out, nil
})

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string {
	return "go test -c ./e2etest/testdata/helper: " + e.err.Error() + "\n" + e.out
}

// helperRun is one run of the helper binary: its own state directory, and
// the file its test writes the cluster id to.
type helperRun struct {
	t      *testing.T
	bin    string
	home   string
	out    string
	marker string
}

func newHelperRun(t *testing.T) *helperRun {
	t.Helper()
	needDocker(t)
	bin, err := helperBin()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return &helperRun{t: t, bin: bin, home: filepath.Join(dir, "home"), out: filepath.Join(dir, "id"), marker: "marker-" + rand.Text()}
}

func (h *helperRun) env() []string {
	return append(os.Environ(), "E2E_HOME="+h.home, "E2E_PLUGIN_PATH="+w.pluginDir, "HELPER_OUT="+h.out, "HELPER_MARKER="+h.marker)
}

func (h *helperRun) command(args ...string) *exec.Cmd {
	cmd := exec.Command(h.bin, args...)
	cmd.Env = h.env()
	return cmd
}

// clusterID is the id the helper's test wrote.
func (h *helperRun) clusterID() string {
	h.t.Helper()
	b, err := os.ReadFile(h.out)
	if err != nil {
		h.t.Fatalf("the helper test wrote no cluster id: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// e2e runs the e2e command on the helper run's state directory.
func (h *helperRun) e2e(args ...string) testbin.Result {
	return testbin.Run(h.t, h.env(), w.e2e, args...)
}

// gone checks that cluster id has no container and no record left.
func (h *helperRun) gone(id string) {
	h.t.Helper()
	if left := containers(h.t, id); len(left) > 0 {
		h.t.Errorf("cluster %s still has containers %v", id, left)
	}
	if r := h.e2e("list", "--json"); r.Code != 0 || strings.Contains(r.Stdout, `"`+id+`"`) {
		h.t.Errorf("e2e list (exit %d) still shows %s:\n%s%s", r.Code, id, r.Stdout, r.Stderr)
	}
}

// TestFailedTestLeavesLogs: a test that fails leaves its cluster's logs
// in its artifact directory (go test -artifacts): the node's journal,
// with what the test wrote to it, and the cluster's description; the
// cluster itself is destroyed.
func TestFailedTestLeavesLogs(t *testing.T) {
	h := newHelperRun(t)
	outDir := t.TempDir()
	b, err := h.command("-test.run", "^TestFails$", "-test.v", "-test.artifacts", "-test.outputdir", outDir).CombinedOutput()
	output := string(b)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(output, "--- FAIL: TestFails") {
		t.Fatalf("the failing test: %v, want exit 1 and a failure:\n%s", err, output)
	}
	id := h.clusterID()
	var journals []string
	_ = filepath.WalkDir(filepath.Join(outDir, "_artifacts"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "journal.log" {
			journals = append(journals, path)
		}
		return nil
	})
	if len(journals) != 1 || filepath.Base(filepath.Dir(journals[0])) != "master_0" {
		t.Fatalf("journals under the artifacts: %v, want master_0/journal.log\n%s", journals, output)
	}
	bundle := filepath.Dir(filepath.Dir(journals[0]))
	// Said at the test's line that made the cluster, not inside e2etest.
	if !strings.Contains(output, "helper_test.go:42: e2etest: the test failed; logs of cluster "+id+" are in "+bundle) {
		t.Errorf("the test's output does not say, at helper_test.go:42 (e2etest.New), where the logs are (%s):\n%s", bundle, output)
	}
	journal, err := os.ReadFile(journals[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(journal), h.marker) || !strings.Contains(string(journal), "systemd") {
		t.Errorf("the journal (%d bytes) lacks the line the test logged (%s); it ends:\n%s", len(journal), h.marker, journal[max(0, len(journal)-1000):])
	}
	// The backend's own view of the node is in the bundle too (docker:
	// its inspect output).
	if b, err := os.ReadFile(filepath.Join(bundle, "master_0", cluster.LogsBackendDir, "inspect.json")); err != nil || !strings.Contains(string(b), id) {
		t.Errorf("master_0's backend view: %v, want docker's inspect of the node", err)
	}
	var desc cluster.Cluster
	if b, err := os.ReadFile(filepath.Join(bundle, "cluster.json")); err != nil || json.Unmarshal(b, &desc) != nil || desc.ID != id || len(desc.Nodes) != 1 {
		t.Errorf("cluster.json: %v, %+v; want cluster %s with its node", err, desc, id)
	}
	h.gone(id)
}

// TestRetainFlag: with -e2e.retain the cluster stays after the test, and
// the test's output says how to destroy it.
func TestRetainFlag(t *testing.T) {
	h := newHelperRun(t)
	b, err := h.command("-test.run", "^TestKeeps$", "-test.v", "-e2e.retain").CombinedOutput()
	if err != nil {
		t.Fatalf("the passing test with -e2e.retain: %v\n%s", err, b)
	}
	id := h.clusterID()
	t.Cleanup(func() { h.e2e("destroy", "-c", id) })
	if want := "kept cluster " + id + " (-e2e.retain): E2E_HOME=" + h.home + " e2e destroy -c " + id; !strings.Contains(string(b), want) {
		t.Errorf("the output lacks %q:\n%s", want, b)
	}
	if left := containers(t, id); !slices.Contains(left, "e2e-"+id+"-master-0") {
		t.Errorf("the retained cluster's containers: %v", left)
	}
	if r := h.e2e("destroy", "-c", id); r.Code != 0 {
		t.Errorf("e2e destroy of the retained cluster: exit %d: %s", r.Code, r.Stderr)
	}
	h.gone(id)
}

// TestSharedDestroyed: a cluster shared through TestMain is gone when the
// test binary exits.
func TestSharedDestroyed(t *testing.T) {
	h := newHelperRun(t)
	if b, err := h.command("-test.run", "^TestShared$", "-test.v").CombinedOutput(); err != nil {
		t.Fatalf("the shared-cluster test: %v\n%s", err, b)
	}
	id := h.clusterID()
	if !strings.HasPrefix(id, "shared-") {
		t.Errorf("shared cluster id %q", id)
	}
	h.gone(id)
}

// TestKilledTestIsReaped: a test binary killed with SIGKILL while its
// cluster runs leaves nothing: its reaper destroys the cluster, then
// exits.
func TestKilledTestIsReaped(t *testing.T) {
	h := newHelperRun(t)
	cmd := h.command("-test.run", "^TestHangs$", "-test.timeout", "15m")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	// The cluster is up once its id is written (the node image may be
	// built first).
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if b, err := os.ReadFile(h.out); err == nil && strings.HasSuffix(string(b), "\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the helper test made no cluster within 10 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	id := h.clusterID()
	var reaper []int
	for _, pid := range testbin.Processes(h.bin) {
		if pid != cmd.Process.Pid {
			reaper = append(reaper, pid)
		}
	}
	if len(reaper) != 1 {
		t.Fatalf("reaper processes beside the test binary: %v, want one", reaper)
	}
	if left := containers(t, id); len(left) != 1 {
		t.Fatalf("the cluster's containers before the kill: %v", left)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	_ = cmd.Wait()
	start := time.Now()
	// The reaper destroys the cluster and exits; a zombie counts as gone
	// (here, nothing reaps a process whose parent died).
	if !testbin.Gone(reaper[0], 3*time.Minute) {
		t.Fatalf("the reaper %d still runs 3 minutes after the kill", reaper[0])
	}
	t.Logf("the reaper destroyed the cluster and exited %s after the kill", time.Since(start).Round(time.Millisecond))
	h.gone(id)
}
