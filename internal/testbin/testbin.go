// Package testbin builds e2e's binaries for tests: the real e2e command
// and plugins, compiled the way the Makefile does, into a test's temporary
// directory. Tests use the binaries, never in-process fakes.
package testbin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/proc"
)

// Root returns the repository root (the directory of the root go.mod).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Compile builds the main package pkg (relative to the repository root,
// such as ./cmd/e2e) to out, with -X main.version=version when version is
// not empty. TestMain functions use it before any test runs.
func Compile(pkg, out, version string) error {
	args := []string{"build", "-o", out}
	if version != "" {
		args = append(args, "-ldflags", "-X main.version="+version)
	}
	args = append(args, pkg)
	cmd := proc.Command(context.Background(), "go", args...)
	cmd.Dir = Root()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// Build is Compile for a test: it fails the test on error.
func Build(tb testing.TB, pkg, out, version string) string {
	tb.Helper()
	if err := Compile(pkg, out, version); err != nil {
		tb.Fatal(err)
	}
	return out
}

// Result is what a command did.
type Result struct {
	Stdout string
	Stderr string
	Code   int
}

// Run runs a binary with exactly the given environment and returns its
// output and exit code. A binary that exits while a process it left holds
// its output fails the test (exec.ErrWaitDelay), as that would hang a user's
// pipeline.
func Run(tb testing.TB, env []string, bin string, args ...string) Result {
	tb.Helper()
	cmd := proc.Command(context.Background(), bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			tb.Fatalf("running %s %v: %v", bin, args, err)
		}
		code = ee.ExitCode()
	}
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

// Processes returns the pids of running processes whose executable path
// (first argument) is path.
func Processes(path string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		argv0, _, _ := strings.Cut(string(b), "\x00")
		if argv0 == path {
			if pid, err := strconv.Atoi(e.Name()); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// Gone waits up to d for process pid to end (zombies count as ended).
func Gone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH || zombie(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitPid waits up to d for a script to write its pid, and a newline, into
// file, and returns it.
func WaitPid(tb testing.TB, file string, d time.Duration) int {
	tb.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(file); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				tb.Fatal(err)
			}
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("nothing wrote its pid to %s within %s", file, d)
	return 0
}

// zombie reports whether pid has ended (or cannot be read any more).
func zombie(pid int) bool {
	st, err := proc.Stat(pid)
	return err != nil || st.Ended()
}

// InCI reports whether the tests run in CI ($CI set, as CI services and
// .ci/run's callers do, and not "false").
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Require stops a test whose prerequisite is missing (err != nil): it is
// skipped, loudly, on a developer's machine, and it FAILS under CI, where
// every prerequisite must be installed (`make deps`) and a skipped test
// would pass without checking anything. what names the prerequisite and
// how to get it.
func Require(tb testing.TB, what string, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if InCI() {
		tb.Fatalf("prerequisite missing under CI: %s: %v", what, err)
	}
	tb.Skipf("SKIPPED LOUDLY: %s: %v (under CI=true this fails)", what, err)
}

// Mean runs f n times and returns the mean duration; benchmarks use it to
// time a command and its baseline in the same run.
func Mean(tb testing.TB, n int, f func() error) time.Duration {
	tb.Helper()
	start := time.Now()
	for range n {
		if err := f(); err != nil {
			tb.Fatal(err)
		}
	}
	return time.Since(start) / time.Duration(n)
}

// Ms is d in milliseconds, for benchmark reports.
func Ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// DockerEngine returns nil when a Docker engine answers `docker info`, else
// an error with what docker said.
func DockerEngine() error {
	out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// RequireDocker stops tb when no Docker engine answers (see Require); why
// says what the test needs it for, or is empty.
func RequireDocker(tb testing.TB, why string) {
	tb.Helper()
	what := "a running Docker engine"
	if why != "" {
		what += " (" + why + ")"
	}
	Require(tb, what, DockerEngine())
}

// NodeImage returns the reference of e2e's node image, built with
// dockerPlugin's `build-image -if-missing` (offline, once per machine and
// recipe); it stops tb when there is no Docker engine and fails it when the
// build fails.
func NodeImage(tb testing.TB, dockerPlugin, why string) string {
	tb.Helper()
	RequireDocker(tb, why)
	cmd := exec.Command(dockerPlugin, "build-image", "-if-missing")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	ref, err := cmd.Output()
	if err != nil {
		tb.Fatalf("building the node image: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(ref))
}
