package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/sdk/sdktest"
)

// cmdlineScanner reads /proc/*/cmdline until stopped, and reports every
// process whose arguments contain secret.
func cmdlineScanner(secret string) (stop func() []string) {
	var (
		mu    sync.Mutex
		found []string
		scans int
	)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			entries, _ := os.ReadDir("/proc")
			for _, e := range entries {
				b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				if err == nil && bytes.Contains(b, []byte(secret)) {
					line := e.Name() + ": " + strings.ReplaceAll(string(b), "\x00", " ")
					mu.Lock()
					if !slices.Contains(found, line) {
						found = append(found, line)
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			scans++
			mu.Unlock()
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() []string {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		if scans == 0 {
			return []string{"no scan of /proc ran"}
		}
		return found
	}
}

// TestAWSSecretsNeverLeak: the secret access key reaches the plugin
// through its environment only: it is in no process's argv during a
// create, in no output of any command even at -vv (errors included), in
// no file of E2E_HOME, and not in inspect's output.
func TestAWSSecretsNeverLeak(t *testing.T) {
	w := newWorld(t)
	s := w.s
	id := "sec-" + randomHex(3)
	var outputs []string

	// The scanner sees a secret in argv when there is one.
	probe := exec.Command("sh", "-c", "sleep 5", "probe", s.secret)
	probe.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so its sleep dies with it
	if err := probe.Start(); err != nil {
		t.Fatal(err)
	}
	stop := cmdlineScanner(s.secret)
	time.Sleep(100 * time.Millisecond)
	found := stop()
	_ = syscall.Kill(-probe.Process.Pid, syscall.SIGKILL)
	_ = probe.Wait()
	// The shell's child is a copy of it until it execs sleep, so the
	// scanner may see two processes; the probe itself must be among them.
	probeLine := strconv.Itoa(probe.Process.Pid) + ": "
	if !slices.ContainsFunc(found, func(l string) bool { return strings.HasPrefix(l, probeLine) }) {
		t.Fatalf("the /proc scanner found %v, want the probe process %d", found, probe.Process.Pid)
	}

	stop = cmdlineScanner(s.secret)
	r := w.create(t, id, "--agents", "1", "--public-agents", "0", "-vv")
	if found := stop(); len(found) > 0 {
		t.Errorf("the secret key is in the argv of %v", found)
	}
	expectCode(t, r, 0)
	outputs = append(outputs, r.Stdout, r.Stderr)
	if !strings.Contains(r.Stderr, "[DEBUG]") {
		t.Errorf("create -vv logged no debug lines:\n%s", r.Stderr)
	}

	for _, args := range [][]string{
		{"inspect", "-c", id, "-vv"}, {"inspect", "-c", id, "--json"}, {"list", "--json", "-vv"},
		{"run", "-c", id, "--all", "-vv", "--", "true"},
	} {
		r := s.e2e(args...)
		expectCode(t, r, 0)
		outputs = append(outputs, r.Stdout, r.Stderr)
	}
	// The cluster's record, keys and known_hosts.
	if n := scanHome(t, s.home, s.secret); n < 3 {
		t.Errorf("E2E_HOME holds %d files: the cluster's record was not checked", n)
	}
	// Errors: AWS refusing a call, and a failing create.
	w.m.Inject(fault{Action: "RunInstances", Status: 401, Code: "AuthFailure"})
	r = w.create(t, "sec-fail-"+randomHex(3), "-vv")
	expectCode(t, r, 1)
	if !strings.Contains(r.Stderr, "AWS refused the credentials") {
		t.Errorf("stderr of a create AWS refused:\n%s", r.Stderr)
	}
	outputs = append(outputs, r.Stdout, r.Stderr)
	w.m.Clear()
	r = s.e2e("destroy", "-c", id, "-vv")
	expectCode(t, r, 0)
	outputs = append(outputs, r.Stdout, r.Stderr)

	for i, out := range outputs {
		if strings.Contains(out, s.secret) {
			t.Errorf("output %d contains the secret key:\n%s", i, out)
		}
	}
	scanHome(t, s.home, s.secret)
}

// scanHome fails the test when a file of home contains secret; it returns
// how many files it read.
func scanHome(t *testing.T, home, secret string) int {
	t.Helper()
	files := 0
	_ = filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		files++
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s contains the secret key", path)
		}
		return nil
	})
	return files
}

// TestConformance runs the SDK's conformance suite against e2e-backend-aws
// on moto.
func TestConformance(t *testing.T) {
	m := startMoto(t)
	ami := debianImage(t, m)
	// Slow enough for the Cancel check to cancel Create half-way, however
	// busy the machine: moto answers in milliseconds.
	m.Inject(fault{Action: "RunInstances", Delay: 300 * time.Millisecond})
	for _, kv := range newSandbox(t, m).env {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, v)
		}
	}
	sdktest.Run(t, sdktest.Config{
		Binary: bins.aws,
		Options: map[string]any{
			"admin_location": "203.0.113.0/24", "instance_type": "t3.medium", "ami": ami,
		},
		Timeout: 2 * time.Minute,
		SkipSSH: "moto makes no machines: the instances it reports run no sshd",
	})
	// Nothing of the suite's clusters is left.
	out, err := m.EC2.DescribeSecurityGroups(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range out.SecurityGroups {
		if tagMap(g.Tags)[tagClusterID] != "" {
			t.Errorf("security group %s of cluster %s is left", *g.GroupId, tagMap(g.Tags)[tagClusterID])
		}
	}
}
