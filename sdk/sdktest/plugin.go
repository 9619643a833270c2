package sdktest

import (
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/sdk/host"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// exitWait bounds how long the plugin process may linger after Kill
// returned; Kill already waits for it, so this only absorbs scheduling.
const exitWait = 5 * time.Second

// start launches the plugin as the e2e host does and returns the go-plugin
// client and the backend client. The process is killed when t ends, and
// the test fails if it is still running afterwards. env (KEY=VALUE) is
// added to the environment the plugin inherits.
func (s *suite) start(t *testing.T, env ...string) (*plugin.Client, *host.Client) {
	t.Helper()
	// t.TempDir paths are too long for unix sockets (108 bytes).
	sockDir, err := os.MkdirTemp("", "e2e")
	if err != nil {
		t.Fatalf("socket directory: %v", err)
	}
	cmd := exec.Command(s.cfg.Binary)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	// Cleanups run last-in first-out: the directory goes, and the log stops,
	// only after the plugin was killed.
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	logs := &testLog{t: t}
	t.Cleanup(logs.stop)

	cfg := host.ClientConfig(cmd, sockDir)
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "sdktest", Level: hclog.Debug, Output: logs})
	pc := plugin.NewClient(cfg)
	t.Cleanup(func() { killPlugin(t, pc) })

	rpc, err := pc.Client()
	if err != nil {
		t.Fatalf("start plugin %s: %v", s.cfg.Binary, err)
	}
	raw, err := rpc.Dispense(host.PluginName)
	if err != nil {
		t.Fatalf("dispense %q from plugin %s: %v", host.PluginName, s.cfg.Binary, err)
	}
	c, ok := raw.(*host.Client)
	if !ok {
		t.Fatalf("plugin %s dispensed a %T, not a *host.Client", s.cfg.Binary, raw)
	}
	return pc, c
}

// killPlugin ends the plugin and checks that its process is gone: no plugin
// may outlive the e2e command that started it.
func killPlugin(t *testing.T, pc *plugin.Client) {
	t.Helper()
	pid := 0
	if rc := pc.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	pc.Kill()
	if pid == 0 {
		// The plugin never got as far as the handshake.
		return
	}
	deadline := time.Now().Add(exitWait)
	for {
		gone, err := processGone(pid)
		if err != nil {
			t.Errorf("check plugin process %d: %v", pid, err)
			return
		}
		if gone {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("plugin process %d still runs %v after Kill", pid, exitWait)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testLog is the output of the host's hclog logger: it writes to t.Log
// until stop is called, because go-plugin may log from its own goroutines
// and t.Log after the end of a test panics.
type testLog struct {
	mu      sync.Mutex
	t       *testing.T
	stopped bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (l *testLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}
