package main

import (
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/testbin"
)

// TestInterruptSaysWhatItWasDoing: Ctrl-C in the middle of any command
// that can take long (here: while its backend call is under way) ends
// with exit 130 and one line saying what was interrupted, not a bare
// "interrupted".
func TestInterruptSaysWhatItWasDoing(t *testing.T) {
	s := newSandbox(t)
	const id = "busy"
	expectCode(t, s.e2e("create", "--backend", "test", "-o", s.dirOpt(), "-c", id), 0)
	files := t.TempDir()
	script := filepath.Join(files, "setup.sh")
	writeFile(t, script, "#!/bin/sh\ntrue\n")
	installer := filepath.Join(files, "dcos_generate_config.sh")
	writeFile(t, installer, "#!/bin/sh\ntrue\n")
	src := filepath.Join(files, "payload")
	writeFile(t, src, "x\n")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"start"}, `starting cluster "busy"`},
		{[]string{"stop"}, `stopping cluster "busy"`},
		{[]string{"install", "--script", script}, `running setup.sh on cluster "busy"`},
		{[]string{"install", "--installer", installer}, `installing DC/OS on cluster "busy"`},
		{[]string{"upgrade", "--installer", installer}, `upgrading DC/OS on cluster "busy"`},
		{[]string{"wait"}, `waiting for DC/OS on cluster "busy"`},
		{[]string{"wait", "--command", "test -e /ready"}, "waiting for `test -e /ready` on cluster \"busy\""},
		{[]string{"send-file", src, "/opt/payload"}, `sending ` + src + ` to cluster "busy"`},
		{[]string{"download", "--node", "master_0", "/etc/hostname", files + "/"}, `downloading /etc/hostname from master_0 of cluster "busy"`},
		{[]string{"run", "--", "uname", "-a"}, "running `uname -a` on cluster \"busy\""},
		{[]string{"ssh"}, `opening a shell on cluster "busy"`},
		{[]string{"inspect"}, `inspecting cluster "busy"`},
		{[]string{"list"}, "listing clusters"},
		{[]string{"clean"}, "looking for leftovers"},
		{[]string{"destroy"}, `destroying cluster "busy"`},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			paused := t.TempDir()
			busy := *s
			busy.t = t
			busy.extra = append(slices.Clone(s.extra), "E2E_TEST_PAUSE_DIR="+paused)
			args := []string{"--plugin-dir", built.pluginDir, tc.args[0]}
			if tc.args[0] != "list" && tc.args[0] != "clean" {
				args = append(args, "-c", id)
			}
			cmd, stderr := busy.start(built.e2e, append(args, tc.args[1:]...)...)
			waitPaused(t, paused, stderr)
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if code := exitCodeOf(t, cmd); code != 130 {
				t.Fatalf("exit code %d after Ctrl-C, want 130; stderr: %s", code, stderr)
			}
			oneErrorLine(t, testbin.Result{Stderr: stderr.String()}, "e2e: interrupted while "+tc.want)
		})
	}
}

// waitPaused waits until the test backend is in the middle of a call.
func waitPaused(t *testing.T, dir string, stderr *strings.Builder) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if found, _ := filepath.Glob(filepath.Join(dir, "*.paused")); len(found) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backend was not called in time; stderr: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
