package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/testbin"
)

// reaperOf returns the pids of the `e2e reap` processes watching
// cluster id.
func reaperOf(id string) []int {
	var out []int
	for _, pid := range testbin.Processes(built.e2e) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if slices.Contains(args, "reap") && slices.Contains(args, id) && !testbin.Gone(pid, 0) {
			out = append(out, pid)
		}
	}
	return out
}

// listed reports whether e2e list shows cluster id.
func listed(t *testing.T, s *sandbox, id string) bool {
	t.Helper()
	r := s.e2e("list", "--json")
	expectCode(t, r, 0)
	return strings.Contains(r.Stdout, `"id": "`+id+`"`)
}

// sleeper starts a process that lives until killed.
func sleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// TestCreateReapWithPID: e2e create --reap-with-pid PID leaves a reaper
// that destroys the cluster once PID is killed (SIGKILL) and then exits;
// a cluster destroyed normally ends its reaper too; a pid that runs
// nothing is refused before anything is made.
func TestCreateReapWithPID(t *testing.T) {
	s := newSandbox(t)
	r := s.e2e("create", "--backend", "test", "-o", s.dirOpt(), "-c", "nobody", "--reap-with-pid", "999999999")
	expectCode(t, r, 2)
	oneErrorLine(t, r, "--reap-with-pid 999999999", "running process")
	if dirs := s.clusterDirs(); len(dirs) != 0 {
		t.Errorf("a refused create made %v", dirs)
	}

	for _, tc := range []struct {
		name string
		// end ends the watched process or the cluster, and returns
		// whether the reaper is to destroy the cluster.
		end func(t *testing.T, watched *exec.Cmd, id string) bool
	}{
		{"watched process killed", func(t *testing.T, watched *exec.Cmd, id string) bool {
			if err := watched.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = watched.Wait()
			return true
		}},
		{"cluster destroyed first", func(t *testing.T, watched *exec.Cmd, id string) bool {
			expectCode(t, s.e2e("destroy", "-c", id), 0)
			return false
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			watched := sleeper(t)
			id := "reap-" + strconv.Itoa(watched.Process.Pid)
			r := s.e2e("create", "--backend", "test", "-o", s.dirOpt(), "-c", id, "--reap-with-pid", strconv.Itoa(watched.Process.Pid))
			expectCode(t, r, 0)
			if strings.TrimSpace(r.Stdout) != id {
				t.Errorf("create printed %q, want the cluster id", r.Stdout)
			}
			reapers := reaperOf(id)
			if len(reapers) != 1 {
				t.Fatalf("reapers of %s: %v, want one", id, reapers)
			}
			time.Sleep(time.Second) // the reaper has looked a few times: it waits
			if !listed(t, s, id) {
				t.Fatalf("cluster %s is gone while the process it is reaped with runs", id)
			}
			expectCode(t, s.e2e("create", "--backend", "test", "-o", s.dirOpt(), "-c", id+"-other"), 0)

			reaps := tc.end(t, watched, id)
			if !testbin.Gone(reapers[0], time.Minute) {
				t.Fatalf("the reaper %d still runs a minute later", reapers[0])
			}
			if listed(t, s, id) || slices.Contains(s.clusterDirs(), id) {
				t.Errorf("cluster %s is still there after its reaper ended", id)
			}
			if !listed(t, s, id+"-other") {
				t.Errorf("the reaper destroyed %s-other, which it was not given", id)
			}
			if !reaps && watched.ProcessState != nil {
				t.Errorf("the watched process ended")
			}
			expectCode(t, s.e2e("destroy", "-c", id+"-other"), 0)
		})
	}
}
