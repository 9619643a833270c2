package main

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/e2e-tool/e2e/sdk"
)

func TestStateOf(t *testing.T) {
	for state, want := range map[string]sdk.NodeState{
		container.StateRunning:    sdk.NodeRunning,
		container.StateExited:     sdk.NodeStopped,
		container.StateCreated:    sdk.NodeStopped,
		container.StatePaused:     sdk.NodeStopped,
		container.StateRestarting: sdk.NodeStopped,
		container.StateRemoving:   sdk.NodeMissing,
		container.StateDead:       sdk.NodeMissing,
	} {
		if got := stateOf(container.Summary{State: state}); got != want {
			t.Errorf("container %s: node %s, want %s", state, got, want)
		}
	}
}

// A node whose container is gone is reported missing, from the counts the
// other containers carry; containers from before the label report only
// what exists.
func TestMissingNodes(t *testing.T) {
	p := &plan{nodes: []nodePlan{{role: sdk.RoleMaster}, {role: sdk.RoleAgent}, {role: sdk.RoleAgent}}}
	label := nodeCounts(p)
	if label != "master=1,agent=2,public_agent=0" {
		t.Fatalf("label %q", label)
	}
	ctr := func(role sdk.Role, index, uid, counts string) container.Summary {
		return container.Summary{
			Names: []string{"/" + containerName("web", role, int(index[0]-'0'))}, State: container.StateRunning,
			Labels: map[string]string{labelClusterID: "web", labelUID: uid, labelRole: string(role), labelIndex: index, labelNodes: counts},
		}
	}
	cs := []container.Summary{
		ctr(sdk.RoleMaster, "0", "u1", label),
		ctr(sdk.RoleAgent, "1", "u1", label),
		// An older creation, from before the label.
		ctr(sdk.RoleMaster, "0", "u0", ""),
	}
	got := clustersOf(cs)
	if len(got) != 2 {
		t.Fatalf("%d clusters, want 2", len(got))
	}
	for _, c := range got {
		var states []string
		for _, n := range c.Nodes {
			states = append(states, n.Name+" "+string(n.State))
		}
		var want []string
		switch c.UID {
		case "u1":
			want = []string{"e2e-web-master-0 running", "e2e-web-agent-0 missing", "e2e-web-agent-1 running"}
		case "u0":
			want = []string{"e2e-web-master-0 running"}
		}
		if !slices.Equal(states, want) {
			t.Errorf("uid %s: nodes %q, want %q", c.UID, states, want)
		}
	}
	for _, bad := range []string{"master=x", "master=1,ghost=2", "master", "agent=-1"} {
		if _, ok := parseNodeCounts(bad); ok {
			t.Errorf("parseNodeCounts(%q) accepted it", bad)
		}
	}
}

// TestStartStopTouchOnlyTheCluster: e2e stop and e2e start act on the
// cluster's own containers (its id and uid), not on a leftover of another
// creation of the same id, nor on another cluster.
func TestStartStopTouchOnlyTheCluster(t *testing.T) {
	cli := needEngine(t)
	s := newSandbox(t)
	id := testID(t, "stop")
	other := testID(t, "other")
	s.mustE2E("create", "--backend", "docker", "-c", id, "--masters", "1", "--agents", "1", "--public-agents", "0")
	s.mustE2E("create", "--backend", "docker", "-c", other, "--masters", "1", "--agents", "0", "--public-agents", "0")
	c := s.inspect(id)
	// A leftover of an earlier creation of the same id: e2e's labels,
	// another uid.
	decoy := "e2e-" + id + "-leftover"
	out, err := exec.Command("docker", "run", "-d", "--name", decoy, "--label", labelManaged+"=true",
		"--label", labelClusterID+"="+id, "--label", labelUID+"=0123456789abcdef", "--label", labelRole+"=master",
		"--label", labelIndex+"=0", "--entrypoint", "sleep", c.Details["image"], "infinity").CombinedOutput()
	if err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}

	states := func() map[string]string {
		t.Helper()
		cs, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: clusterFilter("", "")})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, ct := range cs {
			if n := strings.TrimPrefix(firstName(ct), "/"); strings.HasPrefix(n, "e2e-"+id+"-") || strings.HasPrefix(n, "e2e-"+other+"-") {
				m[n] = ct.State
			}
		}
		return m
	}
	mine := []string{"e2e-" + id + "-master-0", "e2e-" + id + "-agent-0"}
	bystanders := []string{decoy, "e2e-" + other + "-master-0"}

	s.mustE2E("stop", "-c", id)
	got := states()
	for _, n := range mine {
		if got[n] != container.StateExited {
			t.Errorf("after stop, %s is %q, want exited", n, got[n])
		}
	}
	for _, n := range bystanders {
		if got[n] != container.StateRunning {
			t.Errorf("stop of %s touched %s: %q", id, n, got[n])
		}
	}

	// The bystanders stopped, the cluster started: only its nodes start.
	for _, n := range bystanders {
		if out, err := exec.Command("docker", "stop", "-t", "1", n).CombinedOutput(); err != nil {
			t.Fatalf("docker stop %s: %v\n%s", n, err, out)
		}
	}
	s.mustE2E("start", "-c", id)
	got = states()
	for _, n := range mine {
		if got[n] != container.StateRunning {
			t.Errorf("after start, %s is %q, want running", n, got[n])
		}
	}
	for _, n := range bystanders {
		if got[n] != container.StateExited {
			t.Errorf("start of %s touched %s: %q", id, n, got[n])
		}
	}
	lines := strings.Split(strings.TrimSpace(s.mustE2E("run", "-c", id, "--all", "--", "hostname")), "\n")
	slices.Sort(lines)
	if want := []string{"agent_0: " + mine[1], "master_0: " + mine[0]}; !slices.Equal(lines, want) {
		t.Errorf("run --all -- hostname after start: %q, want %q", lines, want)
	}
}
