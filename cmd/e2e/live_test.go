package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/creack/pty"
	"github.com/vbauerster/mpb/v8"
)

// ansi matches terminal control sequences (cursor moves, line clears).
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// onTerminal runs e2e with args in a pseudo-terminal, as on a user's
// terminal, and returns its exit code and what it showed, control
// sequences removed.
func (s *sandbox) onTerminal(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(built.e2e, append([]string{"--plugin-dir", built.pluginDir}, args...)...)
	cmd.Env = append(s.env(), "TERM=xterm")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	// Reading ends with EIO once the process has exited and closed the
	// terminal.
	if _, err := io.Copy(&out, f); err != nil && !errors.Is(err, syscall.EIO) {
		t.Fatal(err)
	}
	code := 0
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return code, strings.ReplaceAll(ansi.ReplaceAllString(out.String(), ""), "\r", "")
}

// TestProgressOnTerminal: on a terminal, create shows one line per node
// with the node's step; without one (TestProgressLines) each step is one
// line, as before.
func TestProgressOnTerminal(t *testing.T) {
	s := newSandbox(t)
	code, out := s.onTerminal(t, "create", "--backend", "test", "-o", s.dirOpt(), "-o", "two_steps=true", "-c", "live",
		"--agents", "2", "--public-agents", "1")
	if code != 0 {
		t.Fatalf("create on a terminal exited %d:\n%s", code, out)
	}
	for _, node := range []string{"e2e-live-master-0", "e2e-live-agent-0", "e2e-live-agent-1", "e2e-live-public_agent-0"} {
		if !strings.Contains(out, "[live] "+node+": boot nodes") {
			t.Errorf("no line for node %s on the terminal:\n%s", node, out)
		}
	}
	if !strings.Contains(out, "created cluster live (4 nodes, backend test)") {
		t.Errorf("create on a terminal said:\n%s", out)
	}
	code, out = s.onTerminal(t, "-q", "destroy", "-c", "live")
	if code != 0 || strings.TrimSpace(out) != "live" {
		t.Errorf("-q destroy on a terminal: exit %d, showed %q; want only the id", code, out)
	}
}

// TestOutputOnDocker: on real nodes, run --json captures each node's
// output and exit code, send-file on a terminal shows a bar per node with
// bytes and rate, and doctor -c measures each node's clock.
func TestOutputOnDocker(t *testing.T) {
	s := newSandbox(t)
	id := "out-" + randomSuffix(t)
	dockerCluster(t, s, id, "--masters", "1", "--agents", "1", "--public-agents", "0")

	r := s.e2e("run", "-c", id, "--all", "--json", "--", "sh", "-c", `echo "out $(hostname)"; echo err >&2; [ "$(hostname)" = e2e-`+id+`-master-0 ]`)
	expectCode(t, r, 1)
	var outs []nodeOutput
	if err := json.Unmarshal([]byte(r.Stdout), &outs); err != nil {
		t.Fatalf("run --json: %v\n%s", err, r.Stdout)
	}
	want := []nodeOutput{
		{Node: "master_0", Name: "e2e-" + id + "-master-0", ExitCode: 0, Stdout: "out e2e-" + id + "-master-0\n", Stderr: "err\n"},
		{Node: "agent_0", Name: "e2e-" + id + "-agent-0", ExitCode: 1, Stdout: "out e2e-" + id + "-agent-0\n", Stderr: "err\n"},
	}
	if len(outs) != len(want) {
		t.Fatalf("run --json = %+v, want %+v", outs, want)
	}
	for i := range want {
		if outs[i] != want[i] {
			t.Errorf("run --json node %d = %+v, want %+v", i, outs[i], want[i])
		}
	}

	src := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(src, bytes.Repeat([]byte("e2e"), 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := s.onTerminal(t, "send-file", "-c", id, src, "/tmp/payload")
	if code != 0 {
		t.Fatalf("send-file on a terminal exited %d:\n%s", code, out)
	}
	for _, node := range []string{"master_0", "agent_0"} {
		line := regexp.MustCompile(`\[` + regexp.QuoteMeta(id) + `\] ` + node + `: send-file .*9\.0 MiB / 9\.0 MiB .*/s`)
		if !line.MatchString(out) {
			t.Errorf("no bar with bytes and rate for %s on the terminal:\n%s", node, out)
		}
	}

	r = s.e2e("doctor", "--backend", "docker", "-c", id)
	expectCode(t, r, 0)
	for _, node := range []string{"master_0", "agent_0"} {
		if !strings.Contains(r.Stdout, "ok    clock of "+node+" in cluster "+id+": ") {
			t.Errorf("doctor -c does not show the clock of %s:\n%s", node, r.Stdout)
		}
	}
}

// TestTransferBarRate: a transfer's bar shows its bytes and its rate
// however fast it was: one that ends before the first refresh too (mpb's
// own average speed shows nothing then), and one with progress on the way.
func TestTransferBarRate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []int64
	}{
		{"done before the first refresh", []int64{9 << 20}},
		{"progress on the way", []int64{0, 3 << 20, 6 << 20, 9 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := newLive(&buf, mpb.WithAutoRefresh(), mpb.WithWidth(120))
			progress := l.transfer("c1", "master_0", "send-file")
			for _, done := range tc.steps {
				progress(done, 9<<20)
			}
			l.stop()
			out := ansi.ReplaceAllString(buf.String(), "")
			want := regexp.MustCompile(`\[c1\] master_0: send-file .*9\.0 MiB / 9\.0 MiB +[0-9]+\.[0-9] [KMGT]?i?B/s`)
			if !want.MatchString(out) {
				t.Errorf("the bar does not show bytes and rate:\n%q", out)
			}
		})
	}
}
