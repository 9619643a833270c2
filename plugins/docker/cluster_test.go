package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
)

// TestCluster makes a 4-node cluster through e2e and checks what a user
// relies on: each node is its own machine, nodes reach each other, mounts
// are per role, inspect shows everything, and destroy leaves nothing.
func TestCluster(t *testing.T) {
	cli := needEngine(t)
	s := newSandbox(t)
	id := testID(t, "life")

	shared := t.TempDir()
	if err := os.WriteFile(filepath.Join(shared, "hello"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostPort := freePort(t)
	start := time.Now()
	s.mustE2E("create", "--backend", "docker", "-c", id, "--masters", "1", "--agents", "2", "--public-agents", "1",
		"-o", "master_mounts="+shared+":/mnt/m:ro", "-o", "labels=team=e2e", "-o", "agent_labels=tier=agent",
		"-o", "memory=1024", "-o", "one_master_host_port_map="+strconv.Itoa(hostPort)+":80")
	t.Logf("e2e create (4 nodes) took %s", time.Since(start).Round(time.Millisecond))

	c := s.inspect(id)
	if c.ID != id || c.UID == "" {
		t.Fatalf("inspect: id %q uid %q", c.ID, c.UID)
	}
	if c.Details["network"] != "e2e-"+id || c.Details["image"] == "" || c.Details["workspace"] == "" {
		t.Errorf("details: %v", c.Details)
	}
	want := []struct{ role, ref, name string }{
		{"master", "master_0", "e2e-" + id + "-master-0"},
		{"agent", "agent_0", "e2e-" + id + "-agent-0"},
		{"agent", "agent_1", "e2e-" + id + "-agent-1"},
		{"public_agent", "public_agent_0", "e2e-" + id + "-public-agent-0"},
	}
	if len(c.Nodes) != len(want) {
		t.Fatalf("inspect shows %d nodes, want 4: %+v", len(c.Nodes), c.Nodes)
	}
	addr := map[string]string{}
	for i, w := range want {
		n := c.Nodes[i]
		if n.Role != w.role || n.Name != w.name || n.Hostname != w.name {
			t.Errorf("node %d: role %q name %q hostname %q, want %s %s", i, n.Role, n.Name, n.Hostname, w.role, w.name)
		}
		if n.PrivateAddress == "" || n.SSH.Host != "127.0.0.1" || n.SSH.Port <= 0 || n.SSH.User != "root" {
			t.Errorf("node %s: address %q ssh %+v", w.ref, n.PrivateAddress, n.SSH)
		}
		addr[w.ref] = n.PrivateAddress
	}

	// Each node is its own machine.
	for _, w := range want {
		out := s.mustE2E("run", "-c", id, "--node", w.ref, "--", "hostname")
		if strings.TrimSpace(out) != w.name {
			t.Errorf("hostname on %s = %q, want %q", w.ref, strings.TrimSpace(out), w.name)
		}
	}
	// Machine ids differ.
	ids := map[string]bool{}
	for _, w := range want {
		ids[strings.TrimSpace(s.mustE2E("run", "-c", id, "--node", w.ref, "--", "cat", "/etc/machine-id"))] = true
	}
	if len(ids) != len(want) {
		t.Errorf("machine ids are not unique: %v", ids)
	}

	// Nodes reach each other by private address, and by name.
	s.mustE2E("run", "-c", id, "--node", "agent_0", "--", "bash", "-c", "</dev/tcp/"+addr["master_0"]+"/22")
	s.mustE2E("run", "-c", id, "--node", "master_0", "--", "bash", "-c", "</dev/tcp/"+addr["public_agent_0"]+"/22")
	if out := s.mustE2E("run", "-c", id, "--node", "agent_1", "--", "getent", "hosts", want[0].name); !strings.HasPrefix(out, addr["master_0"]+" ") {
		t.Errorf("getent hosts %s on agent_1: %q, want %s", want[0].name, out, addr["master_0"])
	}

	// The mount is on the master only.
	if out := s.mustE2E("run", "-c", id, "--node", "master_0", "--", "cat", "/mnt/m/hello"); out != "from the host\n" {
		t.Errorf("master_0:/mnt/m/hello = %q", out)
	}
	if r := s.e2e("run", "-c", id, "--node", "master_0", "--", "touch", "/mnt/m/new"); r.Code == 0 {
		t.Error("a read-only mount was writable")
	}
	for _, ref := range []string{"agent_0", "agent_1", "public_agent_0"} {
		if r := s.e2e("run", "-c", id, "--node", ref, "--", "test", "-e", "/mnt/m/hello"); r.Code != 1 {
			t.Errorf("%s: test -e /mnt/m/hello exited %d, want 1 (no mount)", ref, r.Code)
		}
	}

	// Labels on the engine's side, found by another e2e with no record.
	ctx := context.Background()
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: clusterFilter(id, "")})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range cs {
		for _, l := range []string{labelManaged, labelClusterID, labelUID, labelRole, labelIndex, labelWorkspace} {
			if ct.Labels[l] == "" {
				t.Errorf("container %s has no label %s", firstName(ct), l)
			}
		}
		if ct.Labels[labelUID] != c.UID || ct.Labels["team"] != "e2e" {
			t.Errorf("container %s labels: %v", firstName(ct), ct.Labels)
		}
		if (ct.Labels[labelRole] == "agent") != (ct.Labels["tier"] == "agent") {
			t.Errorf("container %s: agent_labels on role %s: %v", firstName(ct), ct.Labels[labelRole], ct.Labels)
		}
		in, err := cli.ContainerInspect(ctx, ct.ID)
		if err != nil {
			t.Fatal(err)
		}
		if in.HostConfig.Memory != 1024<<20 {
			t.Errorf("container %s: memory limit %d, want 1 GiB", firstName(ct), in.HostConfig.Memory)
		}
		bound := in.HostConfig.PortBindings["80/tcp"]
		isMaster0 := ct.Labels[labelRole] == "master" && ct.Labels[labelIndex] == "0"
		if isMaster0 != (len(bound) == 1 && bound[0].HostIP == "127.0.0.1" && bound[0].HostPort == strconv.Itoa(hostPort)) {
			t.Errorf("container %s: port 80 bound to %v (one_master_host_port_map is for master_0 only)", firstName(ct), bound)
		}
	}
	nets, _ := cli.NetworkList(ctx, network.ListOptions{Filters: clusterFilter(id, c.UID)})
	vols, _ := cli.VolumeList(ctx, volume.ListOptions{Filters: clusterFilter(id, c.UID)})
	if len(nets) != 1 || len(vols.Volumes) == 0 {
		t.Errorf("labelled networks %d (want 1), volumes %d (want some)", len(nets), len(vols.Volumes))
	}
	if _, err := os.Stat(c.Details["workspace"]); err != nil {
		t.Errorf("workspace: %v", err)
	}
	other := newSandbox(t)
	if out := other.mustE2E("list", "--backend", "docker"); !strings.Contains(out, id) || !strings.Contains(out, "untracked (other E2E_HOME)") {
		t.Errorf("another E2E_HOME does not see cluster %s as another's untracked cluster:\n%s", id, out)
	}
	// It says whose: the E2E_HOME whose e2e made the cluster.
	var rows []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Home   string `json:"e2e_home"`
	}
	if err := json.Unmarshal([]byte(other.mustE2E("list", "--backend", "docker", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(s.home, "state") // the sandbox's E2E_HOME
	found := false
	for _, r := range rows {
		if r.ID == id {
			found = true
			if r.Status != "untracked" || r.Home != home {
				t.Errorf("list --json from another E2E_HOME: %+v, want untracked with e2e_home %s", r, home)
			}
		}
	}
	if !found {
		t.Errorf("list --json from another E2E_HOME does not show cluster %s: %+v", id, rows)
	}

	s.mustE2E("destroy", "-c", id)
	if left := leftovers(t, cli, id); len(left) > 0 {
		t.Errorf("destroy left: %v", left)
	}
	if _, err := os.Stat(c.Details["workspace"]); !os.IsNotExist(err) {
		t.Errorf("destroy left the workspace %s (%v)", c.Details["workspace"], err)
	}
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitForNode waits until a node container of cluster id exists.
func waitForNode(t *testing.T, id string, limit time.Duration) bool {
	t.Helper()
	cli := needEngine(t)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		cs, err := listNodes(context.Background(), cli, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) > 0 {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// TestCreateInterrupted sends Ctrl-C (SIGINT) to e2e while it creates the
// nodes: e2e exits 130 and nothing labelled is left.
func TestCreateInterrupted(t *testing.T) {
	cli := needEngine(t)
	s := newSandbox(t)
	id := testID(t, "intr")
	cmd := exec.Command(e2eBin, "create", "--backend", "docker", "-c", id, "--masters", "1", "--agents", "2", "--public-agents", "1")
	cmd.Env = s.env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitForNode(t, id, time.Minute) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("no node container appeared; stderr: %s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("e2e create after SIGINT: exit %d (%v), want 130; stderr: %s", code, err, stderr.String())
	}
	if left := leftovers(t, cli, id); len(left) > 0 {
		t.Errorf("interrupted create left: %v", left)
	}
	if out := s.mustE2E("list"); strings.Contains(out, id) {
		t.Errorf("interrupted cluster is listed:\n%s", out)
	}
	if matches, _ := filepath.Glob(filepath.Join(s.tmp, "e2e-"+id+"-*")); len(matches) > 0 {
		t.Errorf("workspaces left: %v", matches)
	}
}

// TestCreateFailure injects a failure half-way, when the agents start (a
// file mounted over a directory): without --retain nothing is left; with
// it the nodes stay for debugging and e2e destroy removes them.
func TestCreateFailure(t *testing.T) {
	cli := needEngine(t)
	s := newSandbox(t)
	file := filepath.Join(t.TempDir(), "not-a-directory")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := "agent_mounts=" + file + ":/etc/ssh:ro"

	id := testID(t, "fail")
	r := s.e2e("create", "--backend", "docker", "-c", id, "--masters", "1", "--agents", "2", "--public-agents", "1", "-o", bad)
	if r.Code != 1 || !strings.Contains(r.Stderr, "e2e-"+id+"-agent-") {
		t.Fatalf("create with a bad agent mount: exit %d, want 1 naming an agent; stderr: %s", r.Code, r.Stderr)
	}
	t.Logf("the injected failure: %s", strings.TrimSpace(r.Stderr))
	if left := leftovers(t, cli, id); len(left) > 0 {
		t.Errorf("failed create left: %v", left)
	}
	if matches, _ := filepath.Glob(filepath.Join(s.tmp, "e2e-"+id+"-*")); len(matches) > 0 {
		t.Errorf("workspaces left: %v", matches)
	}

	id = testID(t, "keep")
	r = s.e2e("create", "--backend", "docker", "-c", id, "--masters", "1", "--agents", "2", "--public-agents", "1", "-o", bad, "--retain")
	if r.Code != 1 || !strings.Contains(r.Stderr, "retain") {
		t.Fatalf("create --retain with a bad agent mount: exit %d, want 1 saying what is retained; stderr: %s", r.Code, r.Stderr)
	}
	left := leftovers(t, cli, id)
	var ctrs int
	for _, l := range left {
		if strings.HasPrefix(l, "container ") {
			ctrs++
		}
	}
	if ctrs != 4 {
		t.Errorf("--retain kept %v, want the 4 node containers", left)
	}
	// The retained cluster is recorded: inspect shows what was kept.
	if r := s.e2e("list"); !strings.Contains(r.Stdout, id) {
		t.Errorf("the retained cluster is not listed:\n%s%s", r.Stdout, r.Stderr)
	}
	s.mustE2E("destroy", "-c", id)
	if left := leftovers(t, cli, id); len(left) > 0 {
		t.Errorf("destroy of the retained cluster left: %v", left)
	}
	if matches, _ := filepath.Glob(filepath.Join(s.tmp, "e2e-"+id+"-*")); len(matches) > 0 {
		t.Errorf("workspaces left: %v", matches)
	}
}

// TestClean: a container labelled as a node of a cluster no record owns is
// listed by clean --dry-run and removed by clean; a recorded cluster's
// containers are untouched.
func TestClean(t *testing.T) {
	cli := needEngine(t)
	s := newSandbox(t)
	kept := testID(t, "kept")
	s.mustE2E("create", "--backend", "docker", "-c", kept, "--masters", "1", "--agents", "0", "--public-agents", "0")

	orphan := testID(t, "orphan")
	ctx := context.Background()
	name := containerName(orphan, "master", 0)
	resp, err := cli.ContainerCreate(ctx, &container.Config{Image: defaultImageRef(), Labels: map[string]string{
		labelManaged: "true", labelClusterID: orphan, labelUID: "0123456789abcdef", labelRole: "master", labelIndex: "0",
	}}, nil, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true}) })

	// A user's own container from the node image (it inherits the image's
	// labels) and one labelled like e2e's by hand but from no creation:
	// never e2e's to list or remove.
	var users []string
	for i, labels := range []map[string]string{nil, {labelManaged: "true", labelClusterID: orphan}} {
		uname := fmt.Sprintf("%s-users-%d", orphan, i)
		r, err := cli.ContainerCreate(ctx, &container.Config{Image: defaultImageRef(), Labels: labels}, nil, nil, nil, uname)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cli.ContainerRemove(context.Background(), r.ID, container.RemoveOptions{Force: true}) })
		users = append(users, uname)
	}

	out := s.mustE2E("clean", "--dry-run")
	for _, u := range users {
		if strings.Contains(out, u) {
			t.Errorf("clean --dry-run lists the user's container %s:\n%s", u, out)
		}
	}
	line := "docker: container " + name + " (cluster " + orphan + ")"
	if !strings.Contains(out, line) {
		t.Errorf("clean --dry-run does not list %q:\n%s", line, out)
	}
	if strings.Contains(out, kept) {
		t.Errorf("clean --dry-run lists the recorded cluster %s:\n%s", kept, out)
	}
	if _, err := cli.ContainerInspect(ctx, resp.ID); err != nil {
		t.Errorf("dry run removed the orphan: %v", err)
	}

	out = s.mustE2E("clean")
	if !strings.Contains(out, line) {
		t.Errorf("clean does not report %q:\n%s", line, out)
	}
	if left := leftovers(t, cli, orphan); len(left) > 0 {
		t.Errorf("clean left: %v", left)
	}
	for _, u := range users {
		if _, err := cli.ContainerInspect(ctx, u); err != nil {
			t.Errorf("clean removed the user's container %s: %v", u, err)
		}
	}
	cs, err := listNodes(ctx, cli, kept)
	if err != nil || len(cs) != 1 || cs[0].State != "running" {
		t.Errorf("the recorded cluster's containers after clean: %v %v", cs, err)
	}
	s.mustE2E("run", "-c", kept, "--", "true")

	// Another state directory's clean leaves this one's cluster alone.
	other := newSandbox(t)
	if out := other.mustE2E("clean"); strings.Contains(out, kept) {
		t.Errorf("clean from another E2E_HOME touches %s:\n%s", kept, out)
	}
	if cs, err := listNodes(ctx, cli, kept); err != nil || len(cs) != 1 {
		t.Errorf("the cluster of another E2E_HOME after clean: %v %v", cs, err)
	}
	s.mustE2E("destroy", "-c", kept)
}

// TestExec runs commands through the backend's docker exec transport.
func TestExec(t *testing.T) {
	_ = needEngine(t)
	s := newSandbox(t)
	id := testID(t, "exec")
	s.mustE2E("create", "--backend", "docker", "-c", id, "--masters", "1", "--agents", "0", "--public-agents", "0", "-o", "transport=exec")
	defer s.mustE2E("destroy", "-c", id)

	ref := sdkRef(id)
	var out, errb bytes.Buffer
	code, err := backend{}.Exec(context.Background(), ref, execRequest("master_0", []string{"sh", "-c", "echo $GREETING; cat; echo oops >&2; exit 7"},
		map[string]string{"GREETING": "hi"}, strings.NewReader("piped\n"), &out, &errb))
	if err != nil || code != 7 || out.String() != "hi\npiped\n" || errb.String() != "oops\n" {
		t.Errorf("exec: code %d err %v stdout %q stderr %q", code, err, out.String(), errb.String())
	}
	out.Reset()
	code, err = backend{}.Exec(context.Background(), ref, execRequest("e2e-"+id+"-master-0", []string{"id", "-un"}, nil, nil, &out, nil))
	if err != nil || code != 0 || out.String() != "root\n" {
		t.Errorf("exec by name: code %d err %v stdout %q", code, err, out.String())
	}
	code, err = backend{}.Exec(context.Background(), ref, execRequest("master_0", []string{"sh", "-c", "kill -TERM $$"}, nil, nil, nil, nil))
	if err != nil || code != 128+int(syscall.SIGTERM) {
		t.Errorf("exec killed by SIGTERM: code %d err %v, want %d", code, err, 128+int(syscall.SIGTERM))
	}
	if _, err := (backend{}).Exec(context.Background(), ref, execRequest("agent_9", []string{"true"}, nil, nil, nil, nil)); err == nil || !strings.Contains(err.Error(), "master_0") {
		t.Errorf("exec on an unknown node: %v", err)
	}
}
