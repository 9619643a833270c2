package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/e2e-tool/e2e/internal/lastlines"
	"github.com/e2e-tool/e2e/internal/proc"
	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/host"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
)

// StartTimeoutEnv overrides how long a plugin may take to start.
const StartTimeoutEnv = "E2E_PLUGIN_START_TIMEOUT"

// DefaultStartTimeout is how long a plugin may take to answer the handshake.
const DefaultStartTimeout = 30 * time.Second

// Config configures a Host.
type Config struct {
	Dirs Dirs
	// Logger receives the plugins' logs; nil discards them.
	Logger hclog.Logger
	// StartTimeout bounds the handshake; zero means the default (or
	// $E2E_PLUGIN_START_TIMEOUT).
	StartTimeout time.Duration
	// Home is the state directory, passed to plugins as $E2E_HOME (and
	// as the deprecated $E2E_STATE_HOME).
	Home string
}

// Host runs plugins and makes sure none outlives it: Close kills them all.
// It holds only the plugins still running: Plugin.Kill drops one, so a
// long-lived Host (a Go program that creates many clusters) does not grow.
type Host struct {
	dirs         Dirs
	logger       hclog.Logger
	startTimeout time.Duration
	home         string

	mu        sync.Mutex
	plugins   []*Plugin
	socketDir string
}

// NewHost returns a host for the given configuration.
func NewHost(cfg Config) (*Host, error) {
	h := &Host{dirs: cfg.Dirs, logger: cfg.Logger, startTimeout: cfg.StartTimeout, home: cfg.Home}
	if h.logger == nil {
		h.logger = hclog.NewNullLogger()
	}
	if h.startTimeout == 0 {
		h.startTimeout = DefaultStartTimeout
		if v := os.Getenv(StartTimeoutEnv); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("%s=%q is not a duration such as 30s", StartTimeoutEnv, v)
			}
			h.startTimeout = d
		}
	}
	return h, nil
}

// Dirs returns where the host looks for plugins.
func (h *Host) Dirs() Dirs { return h.dirs }

// Discover lists every plugin candidate.
func (h *Host) Discover() ([]Candidate, error) { return Discover(h.dirs) }

// Open finds the plugin for a backend name and starts it.
func (h *Host) Open(ctx context.Context, name string) (*Plugin, error) {
	c, err := Find(h.dirs, name)
	if err != nil {
		return nil, err
	}
	return h.Launch(ctx, c)
}

// socketTempDir returns a short directory for go-plugin's unix sockets;
// socket paths longer than 108 bytes fail, and TMPDIR may be long.
func (h *Host) socketTempDir() (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.socketDir != "" {
		return h.socketDir, nil
	}
	base := os.TempDir()
	if len(base) > 40 {
		base = "/tmp"
	}
	sweepSocketDirs(base)
	// Its owner record lets a later e2e remove the directory of one that
	// was killed before it could (sweepSocketDirs).
	dir, err := makeSocketDir(base)
	if err != nil {
		return "", fmt.Errorf("creating a socket directory for plugins: %w", err)
	}
	h.socketDir = dir
	return dir, nil
}

// Plugin is a running backend plugin.
type Plugin struct {
	Candidate
	*host.Client
	Desc   host.Description
	client *goplugin.Client
	stderr *lastlines.Writer
	pid    int
	host   *Host
}

// Launch starts a plugin executable and asks it to describe itself.
func (h *Host) Launch(ctx context.Context, c Candidate) (*Plugin, error) {
	if c.Problem != "" {
		return nil, fmt.Errorf("plugin %s: %s", c.Path, c.Problem)
	}
	st, err := os.Stat(c.Path)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: %w", c.Name, err)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("plugin %s is not executable: run `chmod +x %s`", c.Path, c.Path)
	}
	sockDir, err := h.socketTempDir()
	if err != nil {
		return nil, err
	}
	// go-plugin starts the process and owns its end (Kill): no context
	// cancels it. Its own process group keeps a Ctrl-C on the terminal
	// away from it, so e2e decides how the plugin winds down.
	cmd := proc.Command(context.Background(), c.Path)
	level := "warn"
	if h.logger.IsTrace() {
		level = "trace"
	} else if h.logger.IsDebug() {
		level = "debug"
	} else if h.logger.IsInfo() {
		level = "info"
	}
	cmd.Env = append(os.Environ(), host.LogLevelEnv+"="+level, host.ParentPIDEnv+"="+strconv.Itoa(os.Getpid()))
	if h.home != "" {
		//lint:ignore SA1019 still set for plugin binaries built before HomeEnv
		cmd.Env = append(cmd.Env, sdk.HomeEnv+"="+h.home, sdk.StateHomeEnv+"="+h.home)
	}
	t := newTail(20)
	cfg := host.ClientConfig(cmd, sockDir)
	// Not Managed: go-plugin's global list of managed clients would keep
	// every client ever started (only CleanupClients empties it); the Host
	// owns its plugins and kills them in Close.
	cfg.Managed = false
	cfg.StartTimeout = h.startTimeout
	cfg.Stderr, cfg.SyncStderr = t, t
	cfg.Logger = quietLogger{Logger: h.logger.Named(c.Name), plugin: filepath.Base(c.Path)}
	cfg.SkipHostEnv = true
	if c.SHA256 != "" {
		sum, err := hex.DecodeString(c.SHA256)
		if err != nil {
			return nil, fmt.Errorf("plugin %q: the manifest's checksum is not hex: reinstall it", c.Name)
		}
		cfg.SecureConfig = &goplugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	client := goplugin.NewClient(cfg)
	p := &Plugin{Candidate: c, client: client, stderr: t, host: h}
	h.mu.Lock()
	h.plugins = append(h.plugins, p)
	h.mu.Unlock()

	rpc, err := client.Client()
	if err != nil {
		// A plugin that failed the handshake cannot be asked to shut down;
		// kill its process group instead of waiting for go-plugin's timeout.
		_ = proc.KillGroup(cmd)
		p.Kill()
		return nil, startError(c, err, t, h.startTimeout)
	}
	if rc := client.ReattachConfig(); rc != nil {
		p.pid = rc.Pid
	}
	raw, err := rpc.Dispense(host.PluginName)
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("plugin %s: %w", c.Path, err)
	}
	sc, ok := raw.(*host.Client)
	if !ok {
		p.Kill()
		return nil, fmt.Errorf("plugin %s does not serve the e2e backend service", c.Path)
	}
	p.Client = sc
	desc, err := sc.Describe(ctx)
	if err != nil {
		werr := p.Wrap("describe", err)
		p.Kill()
		return nil, werr
	}
	p.Desc = desc
	return p, nil
}

var incompatible = regexp.MustCompile(`(?i)incompatible API version with plugin\. Plugin version: (\d+)`)

// startError turns go-plugin's start errors into one line a user can act on.
func startError(c Candidate, err error, t *lastlines.Writer, timeout time.Duration) error {
	msg := err.Error()
	last := t.Last(5)
	switch {
	case errors.Is(err, goplugin.ErrChecksumsDoNotMatch):
		return fmt.Errorf("plugin %q at %s has changed since it was installed (sha256 mismatch); refusing to run it: reinstall it with `e2e plugin install --force PATH`", c.Name, c.Path)
	case incompatible.MatchString(msg):
		v := incompatible.FindStringSubmatch(msg)[1]
		return fmt.Errorf("plugin %q (%s) speaks protocol %s, but this e2e speaks protocol %d: install a build of the plugin for protocol %d, or an e2e that speaks protocol %s", c.Name, c.Path, v, sdk.ProtocolVersion, sdk.ProtocolVersion, v)
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return fmt.Errorf("plugin %q (%s) did not start within %s%s", c.Name, c.Path, timeout, withOutput(last))
	case strings.Contains(msg, "Unrecognized remote plugin message"):
		printed, _, _ := strings.Cut(strings.TrimPrefix(msg[strings.Index(msg, "Unrecognized remote plugin message"):], "Unrecognized remote plugin message: "), "\n")
		if strings.TrimSpace(printed) == "" {
			return &notPlugin{c.Path, "it exited before the plugin handshake" + withOutput(last)}
		}
		return &notPlugin{c.Path, fmt.Sprintf("it printed %q instead of the plugin handshake%s", printed, withOutput(last))}
	case strings.Contains(msg, "plugin exited before we could connect"):
		return &notPlugin{c.Path, "it exited before the plugin handshake" + withOutput(last)}
	case strings.Contains(msg, "exec format error"):
		return &notPlugin{c.Path, "not a program this machine can run"}
	case strings.Contains(msg, "permission denied"):
		return fmt.Errorf("plugin %s is not executable: run `chmod +x %s`", c.Path, c.Path)
	}
	return fmt.Errorf("starting plugin %q (%s): %w%s", c.Name, c.Path, err, withOutput(last))
}

func withOutput(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return "; its last output: " + strings.Join(lines, " | ")
}

// CrashError is returned when a plugin process died during a call.
type CrashError struct {
	Plugin string
	Path   string
	Call   string
	Output []string
}

func (e *CrashError) Error() string {
	return fmt.Sprintf("the %q backend plugin (%s) crashed during %s%s", e.Plugin, e.Path, e.Call, withOutput(e.Output))
}

// Wrap turns a call's error into a CrashError when the plugin process has
// died, so the user learns that the plugin crashed and what it last said.
func (p *Plugin) Wrap(call string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) && !p.exitedWithin(0) {
		return err
	}
	if p.exitedWithin(time.Second) {
		return &CrashError{Plugin: p.Name, Path: p.Path, Call: call, Output: p.stderr.Last(5)}
	}
	return err
}

// exitedWithin reports whether the plugin process has exited, waiting up to
// d for go-plugin to notice (a broken stream is seen before the exit).
func (p *Plugin) exitedWithin(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if p.client.Exited() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pid returns the plugin's process id (0 if unknown).
func (p *Plugin) Pid() int { return p.pid }

// Kill shuts the plugin down and drops it from its Host; it is safe to
// call more than once.
func (p *Plugin) Kill() {
	p.client.Kill()
	p.host.drop(p)
}

// drop forgets a plugin that was killed.
func (h *Host) drop(p *Plugin) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, q := range h.plugins {
		if q == p {
			h.plugins = append(h.plugins[:i], h.plugins[i+1:]...)
			return
		}
	}
}

// Close kills every plugin this host started and removes the socket
// directory. Call it before the process exits.
func (h *Host) Close() {
	h.mu.Lock()
	plugins := h.plugins
	h.plugins = nil
	dir := h.socketDir
	h.socketDir = ""
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range plugins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.client.Kill()
		}()
	}
	wg.Wait()
	if dir != "" {
		_ = removeSocketDir(dir)
	}
}

// newTail keeps the last lines a plugin wrote to stderr, to explain a crash.
func newTail(max int) *lastlines.Writer { return &lastlines.Writer{Max: max, Line: pluginLine} }

// pluginLine keeps the message of an hclog JSON line, and the panic if
// there is one; other lines are kept as they are.
func pluginLine(line string) string {
	if !strings.HasPrefix(line, "{") {
		return line
	}
	var entry map[string]any
	if json.Unmarshal([]byte(line), &entry) != nil {
		return line
	}
	msg, _ := entry["@message"].(string)
	if pv, ok := entry["panic"].(string); ok {
		msg += ": " + pv
	}
	return msg
}

// Exited reports whether the plugin process has ended.
func (p *Plugin) Exited() bool { return p.client.Exited() }

// quietLogger keeps go-plugin's own messages (configuring mTLS, process
// exited, failed to exit gracefully) at trace level, where only -vvv shows
// them: e2e reports what matters in its own words, and -vv is for e2e's
// and the plugins' debug logs. The plugin's forwarded log lines go through
// the logger go-plugin names after the executable, and keep their levels.
type quietLogger struct {
	hclog.Logger
	plugin string // the executable's base name
}

func (q quietLogger) Error(msg string, args ...any) { q.Logger.Trace(msg, args...) }
func (q quietLogger) Warn(msg string, args ...any)  { q.Logger.Trace(msg, args...) }
func (q quietLogger) Info(msg string, args ...any)  { q.Logger.Trace(msg, args...) }
func (q quietLogger) Debug(msg string, args ...any) { q.Logger.Trace(msg, args...) }
func (q quietLogger) Log(_ hclog.Level, msg string, args ...any) {
	q.Logger.Log(hclog.Trace, msg, args...)
}

// Named keeps go-plugin's sub-loggers ("stdio") quiet too, except the one
// that carries the plugin's own log lines.
func (q quietLogger) Named(name string) hclog.Logger {
	if name == q.plugin {
		return q.Logger.Named(name)
	}
	return quietLogger{Logger: q.Logger.Named(name), plugin: q.plugin}
}
