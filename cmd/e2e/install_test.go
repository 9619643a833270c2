package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/testbin"
	"github.com/e2e-tool/e2e/internal/testdcos"
)

// fixtures builds DC/OS installer stand-ins once per test binary.
var fixtures struct {
	once   sync.Once
	dir    string
	v1, v2 string
	err    error
}

func fixture(t *testing.T) (v1, v2 string) {
	t.Helper()
	fixtures.once.Do(func() {
		fixtures.dir, fixtures.err = os.MkdirTemp("", "e2e-fixture-")
		if fixtures.err != nil {
			return
		}
		ctx := context.Background()
		for _, v := range []string{"v1", "v2"} {
			if fixtures.err = os.MkdirAll(filepath.Join(fixtures.dir, v), 0o755); fixtures.err != nil {
				return
			}
		}
		if fixtures.v1, fixtures.err = testdcos.Build(ctx, filepath.Join(fixtures.dir, "v1"), testdcos.Options{Version: "2.2.0-fixture"}); fixtures.err != nil {
			return
		}
		fixtures.v2, fixtures.err = testdcos.Build(ctx, filepath.Join(fixtures.dir, "v2"), testdcos.Options{Version: "2.3.0-fixture"})
	})
	if fixtures.err != nil {
		t.Fatal(fixtures.err)
	}
	return fixtures.v1, fixtures.v2
}

// dockerCluster creates a Docker cluster for one test and destroys it after.
func dockerCluster(t *testing.T, s *sandbox, id string, args ...string) {
	t.Helper()
	testbin.RequireDocker(t, "")
	r := s.e2e(append([]string{"create", "--backend", "docker", "-c", id}, args...)...)
	t.Cleanup(func() {
		s.e2e("destroy", "-c", id)
		_ = exec.Command("sh", "-c", "docker rm -f -v $(docker ps -aq --filter label=e2e.cluster-id="+id+") 2>/dev/null; docker network rm e2e-"+id+" 2>/dev/null").Run()
	})
	expectCode(t, r, 0)
}

func runOut(t *testing.T, s *sandbox, args ...string) string {
	t.Helper()
	r := s.e2e(append([]string{"run"}, args...)...)
	expectCode(t, r, 0)
	return strings.TrimSpace(r.Stdout)
}

func TestInstallDCOSOnDocker(t *testing.T) {
	v1, v2 := fixture(t)
	s := newSandbox(t)
	id := "dcos-" + randomSuffix(t)
	dockerCluster(t, s, id, "--masters", "1", "--agents", "2", "--public-agents", "1")

	extra := filepath.Join(t.TempDir(), "extra.yaml")
	writeFile(t, extra, "cluster_name: e2e-fixture-test\ncheck_time: false\nresolvers: [10.9.8.7]\n")
	r := s.e2e("install", "-c", id, "--installer", v1, "--extra-config", extra)
	expectCode(t, r, 0)

	// The config the installer saw: node lists from the cluster, the
	// user's overrides over the backend's base config.
	var nodes struct {
		Nodes []struct {
			Role           string `json:"role"`
			PrivateAddress string `json:"private_address"`
		} `json:"nodes"`
		DCOS *struct {
			Version string `json:"version"`
		} `json:"dcos"`
	}
	r = s.e2e("inspect", "-c", id, "--json")
	expectCode(t, r, 0)
	if err := json.Unmarshal([]byte(r.Stdout), &nodes); err != nil {
		t.Fatal(err)
	}
	if nodes.DCOS == nil || nodes.DCOS.Version != "2.2.0-fixture" {
		t.Errorf("inspect shows DC/OS %+v, want 2.2.0-fixture", nodes.DCOS)
	}
	seen := runOut(t, s, "-c", id, "--", "cat", "/opt/dcos_install_tmp/config.yaml.seen")
	for _, n := range nodes.Nodes {
		if !strings.Contains(seen, n.PrivateAddress) {
			t.Errorf("config.yaml the installer saw lacks %s (%s):\n%s", n.PrivateAddress, n.Role, seen)
		}
	}
	for _, want := range []string{"cluster_name: e2e-fixture-test", "check_time: false", "10.9.8.7", "bootstrap_url: file:///opt/dcos_install_tmp"} {
		if !strings.Contains(seen, want) {
			t.Errorf("config.yaml the installer saw lacks %q:\n%s", want, seen)
		}
	}
	// Every node runs its role's unit.
	for ref, unit := range map[string]string{"master_0": "dcos-fixture-master", "agent_0": "dcos-fixture-slave",
		"agent_1": "dcos-fixture-slave", "public_agent_0": "dcos-fixture-slave_public"} {
		if got := runOut(t, s, "-c", id, "--node", ref, "--", "systemctl", "is-active", unit); got != "active" {
			t.Errorf("%s: %s is %q", ref, unit, got)
		}
	}
	expectCode(t, s.e2e("wait", "-c", id, "--timeout", "2m"), 0)

	env := runOut(t, s, "-c", id, "--test-env", "--", "sh", "-c", `echo "$MASTER_HOSTS|$SLAVE_HOSTS|$PUBLIC_SLAVE_HOSTS|$DCOS_DNS_ADDRESS|$(pwd)"`)
	parts := strings.Split(env, "|")
	if len(parts) != 5 || parts[0] != nodes.Nodes[0].PrivateAddress || len(strings.Split(parts[1], ",")) != 2 ||
		parts[2] != nodes.Nodes[3].PrivateAddress || parts[3] != "http://"+nodes.Nodes[0].PrivateAddress ||
		parts[4] != "/opt/mesosphere/active/dcos-integration-test" {
		t.Errorf("test environment: %q", env)
	}

	r = s.e2e("upgrade", "-c", id, "--installer", v2)
	expectCode(t, r, 0)
	out := runOut(t, s, "-c", id, "--all", "--", "sh", "-c", `grep -o '"version": *"[^"]*"' /opt/mesosphere/etc/dcos-version.json`)
	if strings.Count(out, "2.3.0-fixture") != 4 {
		t.Errorf("after upgrade:\n%s\nwant 2.3.0-fixture on all four nodes", out)
	}
}

func TestInstallFailuresAreClear(t *testing.T) {
	v1, _ := fixture(t)
	s := newSandbox(t)
	id := "fail-" + randomSuffix(t)
	dockerCluster(t, s, id, "--masters", "1", "--agents", "2", "--public-agents", "0")

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, bad, "master_list: [\n")
	r := s.e2e("install", "-c", id, "--installer", v1, "--extra-config", bad)
	expectCode(t, r, 2)
	oneErrorLine(t, r, "--extra-config is not a YAML map")

	// Waiting for DC/OS on a cluster without it fails at once.
	r = s.e2e("wait", "-c", id, "--timeout", "3s")
	expectCode(t, r, 2)
	oneErrorLine(t, r, "no DC/OS to wait for", "--command")

	// A directory of the installer's name that e2e did not make (a user's,
	// an earlier DC/OS's) is refused, and nothing in it is lost.
	runOut(t, s, "-c", id, "--node", "agent_0", "--sudo", "--", "sh", "-c", "mkdir -p /opt/dcos_install_tmp && echo mine > /opt/dcos_install_tmp/mine.txt")
	r = s.e2e("install", "-c", id, "--installer", v1)
	expectCode(t, r, 1)
	oneErrorLine(t, r, "agent_0", "/opt/dcos_install_tmp exists and e2e did not make it")
	if got := runOut(t, s, "-c", id, "--node", "agent_0", "--", "cat", "/opt/dcos_install_tmp/mine.txt"); got != "mine" {
		t.Errorf("the user's file after a refused install: %q", got)
	}
	runOut(t, s, "-c", id, "--node", "agent_0", "--sudo", "--", "rm", "-rf", "/opt/dcos_install_tmp")

	// The installer fails on agent_1: the error names the node and step.
	failing, err := testdcos.Build(context.Background(), t.TempDir(), testdcos.Options{FailOnHost: "e2e-" + id + "-agent-1"})
	if err != nil {
		t.Fatal(err)
	}
	r = s.e2e("install", "-c", id, "--installer", failing)
	expectCode(t, r, 1)
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	last := lines[len(lines)-1]
	for _, want := range []string{"agent_1", "dcos_install.sh slave", "injected fault"} {
		if !strings.Contains(last, want) {
			t.Errorf("error %q does not mention %q", last, want)
		}
	}
	// The cluster is still usable.
	if got := runOut(t, s, "-c", id, "--node", "agent_0", "--", "echo", "ok"); got != "ok" {
		t.Errorf("cluster unusable after a failed install: %q", got)
	}

}

func TestScriptInstaller(t *testing.T) {
	s := newSandbox(t)
	id := "script-" + randomSuffix(t)
	dockerCluster(t, s, id, "--masters", "1", "--agents", "1", "--public-agents", "1")
	dir := t.TempDir()
	hello := testbin.Build(t, "./internal/testbin/hello", filepath.Join(dir, "hello"), "")
	expectCode(t, s.e2e("send-file", "-c", id, hello, "/opt/hello/hello"), 0)
	script := filepath.Join(dir, "install-hello.sh")
	writeFile(t, script, `#!/bin/sh
set -eu
cat > /etc/systemd/system/hello.service <<UNIT
[Unit]
Description=hello for e2e's script installer test
[Service]
ExecStart=/opt/hello/hello -listen :9000 -say "$E2E_ROLE $E2E_NODE masters=$E2E_MASTER_IPS $1"
[Install]
WantedBy=multi-user.target
UNIT
chmod 0755 /opt/hello/hello
systemctl daemon-reload
systemctl enable --now hello.service
`)
	r := s.e2e("install", "-c", id, "--script", script, "--script-arg", "from-test")
	expectCode(t, r, 0)
	expectCode(t, s.e2e("wait", "-c", id, "--command", "curl -fs http://127.0.0.1:9000/", "--timeout", "1m"), 0)
	out := runOut(t, s, "-c", id, "--node", "public_agent_0", "--", "curl", "-fs", "http://127.0.0.1:9000/")
	if !strings.HasPrefix(out, "public_agent public_agent_0 masters=") || !strings.HasSuffix(out, " from-test") {
		t.Errorf("the service on public_agent_0 says %q", out)
	}
}

func TestInstallURLFromAServerOnTheClusterNetwork(t *testing.T) {
	v1, v2 := fixture(t)
	s := newSandbox(t)
	id := "url-" + randomSuffix(t)
	dockerCluster(t, s, id, "--masters", "1", "--agents", "1", "--public-agents", "0")
	dir := t.TempDir()
	hello := testbin.Build(t, "./internal/testbin/hello", filepath.Join(dir, "hello"), "")
	// The HTTP server runs in a container on the cluster's network: nodes
	// cannot reach this machine's loopback.
	image := strings.TrimSpace(mustOutput(t, "docker", "inspect", "-f", "{{.Config.Image}}", "e2e-"+id+"-master-0"))
	name := "e2e-" + id + "-http"
	mustOutput(t, "docker", "run", "-d", "--name", name, "--label", "e2e.cluster-id="+id, "--network", "e2e-"+id,
		"-v", hello+":/hello:ro", "-v", filepath.Dir(filepath.Dir(v1))+":/srv:ro", "--entrypoint", "/hello", image, "-listen", ":8000", "-dir", "/srv")
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
	ip := strings.TrimSpace(mustOutput(t, "docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name))
	url := fmt.Sprintf("http://%s:8000/v1/%s", ip, filepath.Base(v1))
	r := s.e2e("install", "-c", id, "--installer-url", url, "--wait", "--timeout", "2m")
	expectCode(t, r, 0)
	if got := runOut(t, s, "-c", id, "--", "sh", "-c", "test -s /opt/dcos_genconf/dcos_generate_config.sh && echo yes"); got != "yes" {
		t.Error("master_0 did not download the installer")
	}
	r = s.e2e("install", "-c", id, "--installer-url", url+".missing")
	expectCode(t, r, 1)
	oneErrorLine(t, r, "master_0", "download the installer")

	// Upgrade from a URL too (the only method of backends such as aws).
	url2 := fmt.Sprintf("http://%s:8000/v2/%s", ip, filepath.Base(v2))
	expectCode(t, s.e2e("upgrade", "-c", id, "--installer-url", url2), 0)
	out := runOut(t, s, "-c", id, "--all", "--", "sh", "-c", `grep -o '"version": *"[^"]*"' /opt/mesosphere/etc/dcos-version.json`)
	if strings.Count(out, "2.3.0-fixture") != 2 {
		t.Errorf("after upgrade from a URL:\n%s\nwant 2.3.0-fixture on both nodes", out)
	}
}

func mustOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
}

// TestExecTransport: with transport=exec the node commands go through the
// backend's docker exec, not SSH.
func TestExecTransport(t *testing.T) {
	s := newSandbox(t)
	id := "exec-" + randomSuffix(t)
	dockerCluster(t, s, id, "--masters", "1", "--agents", "1", "--public-agents", "0", "-o", "transport=exec")
	if got := runOut(t, s, "-c", id, "--node", "agent_0", "--", "hostname"); got != "e2e-"+id+"-agent-0" {
		t.Errorf("hostname over exec: %q", got)
	}
	// No SSH session: sshd never saw this command.
	if got := runOut(t, s, "-c", id, "--", "sh", "-c", `echo "ssh:${SSH_CONNECTION:-none}"`); got != "ssh:none" {
		t.Errorf("the command ran over SSH: %q", got)
	}
	r := s.e2e("run", "-c", id, "--", "sh", "-c", "exit 7")
	expectCode(t, r, 7)

	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	writeFile(t, filepath.Join(dir, "x"), "")
	if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(tree, "sub", "f.txt"), "over exec\n")
	if err := os.Chmod(filepath.Join(tree, "sub", "f.txt"), 0o640); err != nil {
		t.Fatal(err)
	}
	expectCode(t, s.e2e("send-file", "-c", id, tree, "/opt/tree"), 0)
	if got := runOut(t, s, "-c", id, "--node", "agent_0", "--", "stat", "-c", "%a %s", "/opt/tree/sub/f.txt"); got != "640 10" {
		t.Errorf("uploaded file: %q", got)
	}
	back := filepath.Join(dir, "back")
	expectCode(t, s.e2e("download", "-c", id, "--node", "master_0", "/opt/tree", back), 0)
	if b, err := os.ReadFile(filepath.Join(back, "sub", "f.txt")); err != nil || string(b) != "over exec\n" {
		t.Errorf("downloaded: %q, %v", b, err)
	}
}
