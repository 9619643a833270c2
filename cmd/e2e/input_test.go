package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/internal/testbin"
	"github.com/e2e-tool/e2e/internal/testdcos"
)

func readFileString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// noDockerResources checks that nothing labelled with the cluster id is
// left in the engine.
func noDockerResources(t *testing.T, id string) {
	t.Helper()
	for _, kind := range []string{"ps -aq", "network ls -q", "volume ls -q"} {
		args := append(strings.Fields(kind), "--filter", "label=e2e.cluster-id="+id)
		if out := strings.TrimSpace(mustOutput(t, "docker", args...)); out != "" {
			t.Errorf("docker %s left: %s", kind, out)
		}
	}
}

// TestDockerInputMistakes: an image that is not in the engine and an SSH
// user the image does not have are the user's mistakes: exit 2, said once,
// nothing left.
func TestDockerInputMistakes(t *testing.T) {
	testbin.RequireDocker(t, "")
	s := newSandbox(t)
	id := "mistake-" + randomSuffix(t)
	t.Cleanup(func() { s.e2e("destroy", "-c", id) })
	image := "e2e-no-such-image-" + randomSuffix(t)

	r := s.e2e("create", "--backend", "docker", "-c", id, "-o", "image="+image)
	expectCode(t, r, 2)
	oneErrorLine(t, r, `option "image"`, image, "docker load")
	noDockerResources(t, id)

	// A network that does not exist: the backend's own hint, and no other.
	network := "e2e-no-such-network-" + randomSuffix(t)
	r = s.e2e("create", "--backend", "docker", "-c", id, "-o", "network="+network)
	expectCode(t, r, 2)
	oneErrorLine(t, r, `option "network"`, network, "(see docker network ls)")
	if n := strings.Count(r.Stderr, "(see "); n != 1 {
		t.Errorf("%d hints in one error, want one:\n%s", n, r.Stderr)
	}
	noDockerResources(t, id)

	// A host port something here holds: said before anything is made.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	busy := strconv.Itoa(held.Addr().(*net.TCPAddr).Port)
	for _, opt := range []string{"host_port_map=master_0=" + busy + ":80", "one_master_host_port_map=" + busy + ":80"} {
		r = s.e2e("create", "--backend", "docker", "-c", id, "-o", opt)
		expectCode(t, r, 2)
		name, _, _ := strings.Cut(opt, "=")
		oneErrorLine(t, r, `option "`+name+`"`, "127.0.0.1:"+busy+"/tcp for master_0", "address already in use")
		noDockerResources(t, id)
	}

	r = s.e2e("create", "--backend", "docker", "-c", id, "--ssh-user", "nosuchuser", "--agents", "2")
	expectCode(t, r, 2)
	oneErrorLine(t, r, `SSH user "nosuchuser" does not exist in the node image`)
	if n := strings.Count(r.Stderr, "does not exist"); n != 1 {
		t.Errorf("the missing user is told %d times, want once:\n%s", n, r.Stderr)
	}
	if strings.Contains(r.Stderr, "plugin info") {
		t.Errorf("a refused --ssh-user is not about an option, yet the error points at plugin info:\n%s", r.Stderr)
	}
	noDockerResources(t, id)
	if got := s.records(); len(got) != 0 {
		t.Errorf("state records %v after refused creates", got)
	}
}

// TestDottedIDOnDocker: a cluster id with a dot gives hostnames that are
// one RFC 1123 label; waiting for DC/OS where there is none fails at once;
// the Enterprise superuser's password comes from a file or the
// environment, never from the command line.
func TestDottedIDOnDocker(t *testing.T) {
	suffix := randomSuffix(t)
	id := "n." + suffix
	s := newSandbox(t)
	dockerCluster(t, s, id, "--masters", "1", "--agents", "0", "--public-agents", "0")

	host := "e2e-n-" + suffix + "-master-0"
	if got := runOut(t, s, "-c", id, "--", "hostname"); got != host {
		t.Errorf("hostname = %q, want %q", got, host)
	}
	// One label: the short name is the whole name, and it resolves.
	if got := runOut(t, s, "-c", id, "--", "hostname", "-s"); got != host {
		t.Errorf("hostname -s = %q, want %q", got, host)
	}
	expectCode(t, s.e2e("run", "-c", id, "--", "getent", "hosts", host), 0)

	// The README's download example works on the default image.
	readme := readFileString(t, filepath.Join(testbin.Root(), "README.md"))
	m := regexp.MustCompile(`e2e download -c mine --node master_0 (\S+) \./\n`).FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("the README has no download example into ./")
	}
	// As written, run from the directory dl: "./" is dl with its slash.
	dl := t.TempDir()
	expectCode(t, s.e2e("download", "-c", id, "--node", "master_0", m[1], dl+"/"), 0)
	if got := readFileString(t, filepath.Join(dl, filepath.Base(m[1]))); got == "" {
		t.Errorf("the README's download of %s brought an empty file", m[1])
	}

	r := s.e2e("wait", "-c", id)
	expectCode(t, r, 2)
	oneErrorLine(t, r, "no DC/OS to wait for", "e2e wait --command")

	const password = "hunter2-in-argv"
	r = s.e2e("wait", "-c", id, "--superuser-username", "bob", "--superuser-password", password)
	expectCode(t, r, 2)
	oneErrorLine(t, r, "--superuser-password", "E2E_SUPERUSER_PASSWORD", "--superuser-password-file")
	if strings.Contains(r.Stderr, password) {
		t.Errorf("the password was repeated:\n%s", r.Stderr)
	}

	ee, err := testdcos.Build(context.Background(), t.TempDir(), testdcos.Options{Variant: "enterprise"})
	if err != nil {
		t.Fatal(err)
	}
	extra := filepath.Join(t.TempDir(), "extra.yaml")
	writeFile(t, extra, "superuser_username: bob\n")
	expectCode(t, s.e2e("install", "-c", id, "--installer", ee, "--extra-config", extra), 0)

	// Without a password the Enterprise login is refused until the timeout.
	r = s.e2e("wait", "-c", id, "--superuser-username", "bob", "--timeout", "6s")
	expectCode(t, r, 1)
	oneErrorLine(t, r, "superuser login")
	pwFile := filepath.Join(t.TempDir(), "password")
	writeFile(t, pwFile, "from-a-file\n")
	expectCode(t, s.e2e("wait", "-c", id, "--superuser-username", "bob", "--superuser-password-file", pwFile, "--timeout", "2m"), 0)
	s.extra = append(s.extra, "E2E_SUPERUSER_PASSWORD=from-the-environment")
	expectCode(t, s.e2e("wait", "-c", id, "--superuser-username", "bob", "--timeout", "2m"), 0)
}

// TestSecretValueNeverRepeated: a secret option whose value has the wrong
// type is refused by name and type; its value appears nowhere.
func TestSecretValueNeverRepeated(t *testing.T) {
	s := newSandbox(t)
	s.extra = append(s.extra, "E2E_TEST_PIN=hunter2-not-a-number")
	r := s.e2e("create", "--backend", "test", "-o", s.dirOpt())
	expectCode(t, r, 2)
	oneErrorLine(t, r, `option "pin"`, "E2E_TEST_PIN", "an integer")
	if strings.Contains(r.Stdout+r.Stderr, "hunter2") {
		t.Errorf("the secret's value was repeated:\n%s", r.Stderr)
	}
	if got := s.clusterDirs(); len(got) != 0 {
		t.Errorf("the backend made %v", got)
	}
}

// TestFlagsWinPerOption: an option given with -o replaces the cluster
// file's value of that option whole (a list too); options the flags do not
// name keep the file's values.
func TestFlagsWinPerOption(t *testing.T) {
	s := newSandbox(t)
	cfg := filepath.Join(t.TempDir(), "cluster.yaml")
	writeFile(t, cfg, "backend: test\ncluster_id: layered\noptions:\n  dir: "+s.machine+
		"\n  master_mounts: [\"/src:/src:ro\", \"/data:/data\"]\n  tags: [from-file]\n  memory: 1024\n")
	r := s.e2e("create", "--config", cfg, "-o", "master_mounts=/flag:/flag", "-o", "tags=a", "-o", "tags=b")
	expectCode(t, r, 0)
	b, err := os.ReadFile(filepath.Join(s.home, "clusters", "layered", "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Options map[string]any `json:"options"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, k := range []string{"master_mounts", "tags", "memory"} {
		v, _ := json.Marshal(meta.Options[k])
		got[k] = string(v)
	}
	want := map[string]string{"master_mounts": `"/flag:/flag"`, "tags": `["a","b"]`, "memory": `1024`}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("option %s stored as %s, want %s", k, got[k], w)
		}
	}
}
