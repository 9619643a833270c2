package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/internal/ssh/sshdtest"
	"github.com/e2e-tool/e2e/internal/testbin"
	"github.com/e2e-tool/e2e/sdk/sdktest"
	gossh "golang.org/x/crypto/ssh"
)

// TestConformance runs the SDK's conformance suite against the test
// backend, built as the real executable e2e would start. Its Create takes
// no time at all: the Cancel check must still cancel it half-way.
func TestConformance(t *testing.T) {
	bin := testbin.Build(t, "./internal/testbackend", filepath.Join(t.TempDir(), "e2e-backend-test"), "")
	sdktest.Run(t, sdktest.Config{
		Binary:  bin,
		Options: map[string]any{"dir": t.TempDir()},
		Agents:  2,
	})
}

// sshdPool starts n real sshd servers for the test backend's nodes and
// points the backend at them (the environment is inherited by the plugin).
func sshdPool(t *testing.T, n int, noSFTP bool) {
	t.Helper()
	var p []poolNode
	for range n {
		s := sshdtest.Start(t, sshdtest.Options{NoSFTP: noSFTP})
		p = append(p, poolNode{Port: s.Endpoint.Port, AuthorizedKeys: filepath.Join(s.Dir, "authorized_keys"),
			HostKey: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.HostKey)))})
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pool.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(sshdPoolEnv, path)
}

// TestConformanceSSH: with nodes that run a real sshd, reported with their
// host keys (with a trailing comment, as ssh-keygen writes them), the SSH
// checks pass.
func TestConformanceSSH(t *testing.T) {
	bin := testbin.Build(t, "./internal/testbackend", filepath.Join(t.TempDir(), "e2e-backend-test"), "")
	sshdPool(t, 3, false)
	sdktest.Run(t, sdktest.Config{Binary: bin, Options: map[string]any{"dir": t.TempDir()}})
}

// Environment of TestBrokenBackend, set by TestConformanceCatchesBugs.
const (
	brokenBinEnv    = "E2E_TEST_BROKEN_BIN"
	brokenFaultEnv  = "E2E_TEST_BROKEN_FAULT"
	brokenNoSFTPEnv = "E2E_TEST_BROKEN_NO_SFTP"
)

// TestBrokenBackend runs sdktest against a backend with one bug; it is run
// (in a process of its own, so that its failure is its own) by
// TestConformanceCatchesBugs, and returns at once otherwise.
func TestBrokenBackend(t *testing.T) {
	bin := os.Getenv(brokenBinEnv)
	if bin == "" {
		t.Log("run by TestConformanceCatchesBugs")
		return
	}
	sshdPool(t, 3, os.Getenv(brokenNoSFTPEnv) != "")
	sdktest.Run(t, sdktest.Config{Binary: bin,
		Options: map[string]any{"dir": t.TempDir(), "ssh_fault": os.Getenv(brokenFaultEnv)}})
}

// TestConformanceCatchesBugs: each bug a backend can have that sdktest
// promises to find makes the suite fail, in the check that is about it,
// saying what is wrong.
func TestConformanceCatchesBugs(t *testing.T) {
	bin := testbin.Build(t, "./internal/testbackend", filepath.Join(t.TempDir(), "e2e-backend-test"), "")
	for _, tc := range []struct {
		name   string
		fault  string
		noSFTP bool
		failed string // the subtest that must fail
		want   string
	}{
		{"host keys not the node's", faultWrongHostKey, false, "Lifecycle/SSH", "but the backend reported"},
		{"no sftp subsystem", "", true, "Lifecycle/SSH", "need the sftp subsystem"},
		{"destroy frees nothing", faultKeepNodes, false, "Lifecycle/NodesGoneAfterDestroy", "still accepts the cluster's key"},
		{"cancelled create leaks", faultLeakOnCancel, false, "Cancel", "after Destroy found it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Only the check at fault runs: the others have nothing to find.
			check, _, _ := strings.Cut(tc.failed, "/")
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenBackend$/^"+check+"$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenBinEnv+"="+bin, brokenFaultEnv+"="+tc.fault)
			if tc.noSFTP {
				cmd.Env = append(cmd.Env, brokenNoSFTPEnv+"=1")
			}
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("sdktest passed a backend whose bug is: %s\n%s", tc.name, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenBackend/"+tc.failed+" ") {
				t.Errorf("check %s did not fail:\n%s", tc.failed, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("the failure does not say %q:\n%s", tc.want, out)
			}
		})
	}
}
