package plugin_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/plugin"
	"github.com/e2e-tool/e2e/internal/testbin"
)

// BenchmarkPluginRoundTrip measures start + handshake + Describe + shutdown
// of a real plugin binary, against a bare exec of the same binary
// (--version) measured in the same run. Goal: under 50 ms.
func BenchmarkPluginRoundTrip(b *testing.B) {
	dir := b.TempDir()
	bin := testbin.Build(b, "./plugins/docker", filepath.Join(dir, "e2e-backend-docker"), "bench")
	b.Setenv("XDG_DATA_HOME", b.TempDir())
	n := max(b.N, 5)
	base := testbin.Mean(b, n, func() error { return exec.Command(bin, "--version").Run() })
	rt := testbin.Mean(b, n, func() error {
		h, err := plugin.NewHost(plugin.Config{Dirs: plugin.Dirs{Flag: []string{dir}}})
		if err != nil {
			return err
		}
		defer h.Close()
		p, err := h.Launch(context.Background(), plugin.Candidate{Name: "docker", Path: bin})
		if err != nil {
			return err
		}
		if p.Desc.Name != "docker" {
			return fmt.Errorf("described as %q", p.Desc.Name)
		}
		p.Kill()
		return nil
	})
	b.ReportMetric(testbin.Ms(rt), "ms/roundtrip")
	b.ReportMetric(testbin.Ms(base), "ms/bare-exec")
	b.ReportMetric(float64(rt)/float64(base), "x-bare-exec")
	verdict := "meets"
	if rt > 50*time.Millisecond {
		verdict = "MISSES"
	}
	fmt.Fprintf(os.Stderr, "plugin round trip: %.1f ms (%s the 50 ms goal); %.1fx a bare exec of the same binary (%.1f ms); %d runs\n",
		testbin.Ms(rt), verdict, float64(rt)/float64(base), testbin.Ms(base), n)
}

// BenchmarkPluginList measures `e2e plugin list` with the three built-in
// plugins, against `e2e version` (e2e's own start) and `e2e plugin info
// docker` (one plugin round trip through the CLI) in the same run.
func BenchmarkPluginList(b *testing.B) {
	bin := b.TempDir()
	cmd := exec.Command("make", "build", "BINDIR="+bin)
	cmd.Dir = testbin.Root()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("make build: %v\n%s", err, out)
	}
	e2e := filepath.Join(bin, "e2e")
	env := append(os.Environ(), "XDG_DATA_HOME="+b.TempDir(), "E2E_HOME="+b.TempDir(), "E2E_PLUGIN_PATH=")
	run := func(args ...string) func() error {
		return func() error {
			c := exec.Command(e2e, args...)
			c.Env = env
			if out, err := c.CombinedOutput(); err != nil {
				return fmt.Errorf("e2e %v: %v\n%s", args, err, out)
			}
			return nil
		}
	}
	n := max(b.N, 5)
	version := testbin.Mean(b, n, run("version"))
	one := testbin.Mean(b, n, run("plugin", "info", "docker"))
	list := testbin.Mean(b, n, run("plugin", "list"))
	b.ReportMetric(testbin.Ms(list), "ms/plugin-list")
	b.ReportMetric(float64(list)/float64(one), "x-one-plugin")
	fmt.Fprintf(os.Stderr, "e2e plugin list (3 plugins): %.1f ms; %.2fx one plugin round trip through the CLI (%.1f ms); e2e version: %.1f ms; %d runs\n",
		testbin.Ms(list), float64(list)/float64(one), testbin.Ms(one), testbin.Ms(version), n)
}
