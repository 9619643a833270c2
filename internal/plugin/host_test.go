package plugin

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/internal/testbin"
)

func (h *Host) running() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.plugins)
}

// TestHostHoldsOnlyRunningPlugins: a long-lived Host (a Go program that
// creates many clusters) forgets each plugin it killed, including one that
// failed its handshake, and Close ends the rest.
func TestHostHoldsOnlyRunningPlugins(t *testing.T) {
	dir := t.TempDir()
	bin := testbin.Build(t, "./internal/testbackend", filepath.Join(dir, "e2e-backend-test"), "1.0.0-test")
	notPlugin := filepath.Join(dir, "e2e-backend-nope")
	touch(t, notPlugin, 0o755)
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	h, err := NewHost(Config{Dirs: Dirs{Flag: []string{dir}}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	launch := func() *Plugin {
		t.Helper()
		p, err := h.Launch(ctx, Candidate{Name: "test", Path: bin})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	for range 5 {
		p := launch()
		p.Kill()
		p.Kill() // twice is fine
		if !testbin.Gone(p.Pid(), 5*time.Second) {
			t.Errorf("killed plugin %d still runs", p.Pid())
		}
	}
	if _, err := h.Launch(ctx, Candidate{Name: "nope", Path: notPlugin}); err == nil {
		t.Fatal("a shell script passed the plugin handshake")
	}
	if n := h.running(); n != 0 {
		t.Errorf("after killing every plugin it started, the host holds %d", n)
	}

	kept := []*Plugin{launch(), launch(), launch()}
	if n := h.running(); n != 3 {
		t.Errorf("the host holds %d plugins, want the 3 running", n)
	}
	h.Close()
	if n := h.running(); n != 0 {
		t.Errorf("after Close the host holds %d plugins", n)
	}
	for _, p := range kept {
		if !testbin.Gone(p.Pid(), 5*time.Second) {
			t.Errorf("plugin %d outlived Host.Close", p.Pid())
		}
	}
}
