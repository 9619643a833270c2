package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/internal/testbin"
)

// previousSDK is the last commit before the SDK's redesign (sdk/host, one
// capability mechanism, the typed transport): plugins built from it speak
// the protocol as the SDK then did.
const previousSDK = "bd0b1d2d6f967c3b60c36ea99647bd1f07aec656"

// previousPlugins builds e2e-backend-test and e2e-backend-docker from the
// tree at previousSDK, taken from git history, into a directory of their
// own.
func previousPlugins(t *testing.T) string {
	t.Helper()
	root := testbin.Root()
	err := exec.Command("git", "-C", root, "cat-file", "-e", previousSDK+"^{commit}").Run()
	testbin.Require(t, fmt.Sprintf("git history with commit %s, to build plugins with the SDK before its redesign (a full clone: git fetch --unshallow)", previousSDK[:12]), err)

	src := t.TempDir()
	archive := filepath.Join(t.TempDir(), "tree.tar")
	for _, args := range [][]string{
		{"git", "-C", root, "archive", "--format=tar", "-o", archive, previousSDK},
		{"tar", "-xf", archive, "-C", src},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	dir := t.TempDir()
	for _, b := range []struct{ pkg, name string }{
		{"./internal/testbackend", "e2e-backend-test"},
		{"./plugins/docker", "e2e-backend-docker"},
	} {
		cmd := exec.Command("go", "build", "-ldflags", "-X main.version=0.0.1-previous", "-o", filepath.Join(dir, b.name), b.pkg)
		cmd.Dir, cmd.Env = src, append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s at %s: %v\n%s", b.pkg, previousSDK[:12], err, out)
		}
	}
	return dir
}

// TestPreviousSDKPlugins: plugin binaries built with the SDK before its
// redesign work with this e2e, through the same protocol. Their
// capabilities came from Info's booleans then; the docker backend said
// "exec" in Details["transport"] instead of the typed field.
func TestPreviousSDKPlugins(t *testing.T) {
	plugins := previousPlugins(t)
	s := newSandbox(t)
	e2e := func(args ...string) testbin.Result {
		t.Helper()
		return testbin.Run(t, s.env(), built.e2e, append([]string{"--plugin-dir", plugins}, args...)...)
	}

	t.Run("test backend", func(t *testing.T) {
		r := e2e("plugin", "info", "test")
		expectCode(t, r, 0)
		for _, want := range []string{"test 0.0.1-previous (protocol 1)",
			"capabilities: destroy=true install=path tracks-clusters=true exec=false verify-ssh=false clean=true start-stop=true"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("plugin info lacks %q:\n%s", want, r.Stdout)
			}
		}
		id := "compat-" + randomSuffix(t)
		expectCode(t, e2e("create", "--backend", "test", "-c", id, "-o", s.dirOpt(), "--agents", "2"), 0)
		r = e2e("list")
		expectCode(t, r, 0)
		if !strings.Contains(r.Stdout, id) || !strings.Contains(r.Stdout, "running") {
			t.Errorf("list:\n%s", r.Stdout)
		}
		r = e2e("inspect", "-c", id)
		expectCode(t, r, 0)
		for _, want := range []string{"master_0", "agent_1", "public_agent_0"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("inspect lacks %s:\n%s", want, r.Stdout)
			}
		}
		expectCode(t, e2e("stop", "-c", id), 0)
		if r := e2e("inspect", "-c", id); !strings.Contains(r.Stdout, "status: stopped") {
			t.Errorf("inspect after stop:\n%s", r.Stdout)
		}
		expectCode(t, e2e("start", "-c", id), 0)
		// Clean takes no options: the test backend finds its directory in
		// the environment. A recorded cluster is no leftover.
		s.extra = append(s.extra, "E2E_TEST_BACKEND_DIR="+s.machine)
		r = e2e("clean", "--dry-run", "--backend", "test")
		expectCode(t, r, 0)
		if strings.Contains(r.Stdout, id) {
			t.Errorf("clean would remove the recorded cluster:\n%s", r.Stdout)
		}
		expectCode(t, e2e("destroy", "-c", id), 0)
		if dirs := s.clusterDirs(); len(dirs) != 0 {
			t.Errorf("destroy left stand-in machines: %v", dirs)
		}
		if recs := s.records(); len(recs) != 0 {
			t.Errorf("destroy left records: %v", recs)
		}
	})

	t.Run("docker backend over exec", func(t *testing.T) {
		testbin.RequireDocker(t, "")
		id := "compat-exec-" + randomSuffix(t)
		r := e2e("create", "--backend", "docker", "-c", id, "--masters", "1", "--agents", "1", "--public-agents", "0", "-o", "transport=exec")
		t.Cleanup(func() {
			e2e("destroy", "-c", id)
			_ = exec.Command("sh", "-c", "docker rm -f -v $(docker ps -aq --filter label=e2e.cluster-id="+id+") 2>/dev/null; docker network rm e2e-"+id+" 2>/dev/null").Run()
		})
		expectCode(t, r, 0)
		r = e2e("inspect", "-c", id)
		expectCode(t, r, 0)
		if n := strings.Count(r.Stdout, "transport: exec"); n != 1 {
			t.Errorf("inspect shows the exec transport the plugin asked for in its details %d times, want once:\n%s", n, r.Stdout)
		}
		r = e2e("run", "-c", id, "--all", "--", "sh", "-c", `echo "$(hostname) ssh:${SSH_CONNECTION:-none}"`)
		expectCode(t, r, 0)
		for _, want := range []string{"e2e-" + id + "-master-0 ssh:none", "e2e-" + id + "-agent-0 ssh:none"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("run over exec: stdout lacks %q (a command that ran over SSH shows its connection):\n%s", want, r.Stdout)
			}
		}
		expectCode(t, e2e("destroy", "-c", id), 0)
		if out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=e2e.cluster-id="+id).Output(); strings.TrimSpace(string(out)) != "" {
			t.Errorf("destroy left containers: %s", out)
		}
	})
}
