package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/testbin"
)

// TestKilledCreateLeavesNothing kills e2e with SIGKILL while the plugin
// creates the nodes (every container exists, systemd boots in them). e2e
// cannot clean up; the plugin's parent-death path must remove everything
// the create made (containers, volumes, network, workspace) and exit.
// The plugin used to die of SIGPIPE half-way when its watchdog logged to
// the dead e2e's pipe, leaving the network and the workspace; whether the
// log line came during the cleanup was a race, which cmd/e2e's
// TestKilledE2ELeavesNoPlugin makes certain with a slow test backend.
func TestKilledCreateLeavesNothing(t *testing.T) {
	cli := needEngine(t)
	s := newSandbox(t)
	id := testID(t, "kill")
	const nodes = 6
	cmd := exec.Command(e2eBin, "create", "--backend", "docker", "-c", id,
		"--masters", "1", "--agents", strconv.Itoa(nodes-1), "--public-agents", "0")
	cmd.Env = s.env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	// Wait until every node container exists, then kill e2e at once:
	// the plugin is then still in Create, waiting for the nodes to boot.
	deadline := time.Now().Add(3 * time.Minute)
	workspace := ""
	for {
		cs, err := listNodes(context.Background(), cli, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == nodes {
			workspace = cs[0].Labels[labelWorkspace]
			break
		}
		select {
		case <-exited:
			t.Fatalf("e2e create ended before all %d containers existed: %s", nodes, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d node containers after 3 minutes: %s", len(cs), nodes, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	plugins := childrenOf(cmd.Process.Pid, pluginBin)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	if len(plugins) != 1 {
		t.Fatalf("e2e ran %d docker plugin processes (%v), want 1", len(plugins), plugins)
	}

	// The plugin notices within a second (the gRPC stream breaks at
	// once); its cleanup has sdk.StopTimeout to finish.
	var left []string
	until := time.Now().Add(2 * time.Minute)
	for {
		left = leftovers(t, cli, id)
		if ws, _ := filepath.Glob(filepath.Join(s.tmp, "e2e-"+id+"-*")); len(ws) > 0 {
			left = append(left, ws...)
		}
		if len(left) == 0 && testbin.Gone(plugins[0], 0) || time.Now().After(until) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("after e2e was killed during create, the plugin left: %v", left)
	}
	if workspace == "" {
		t.Error("the containers named no workspace: the test could not check it")
	} else if _, err := os.Stat(workspace); !os.IsNotExist(err) {
		t.Errorf("workspace %s is still there (%v)", workspace, err)
	}
	if !testbin.Gone(plugins[0], 0) {
		t.Errorf("the plugin process %d outlived e2e and its cleanup", plugins[0])
	}
	if pids := testbin.Processes(pluginBin); len(pids) > 0 {
		t.Errorf("docker plugin processes still running: %v", pids)
	}
}

// childrenOf returns the pids of the running children of pid whose
// executable is path.
func childrenOf(pid int, path string) []int {
	var out []int
	for _, child := range testbin.Processes(path) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(child), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}
