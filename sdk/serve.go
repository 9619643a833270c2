package sdk

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
	"github.com/e2e-tool/e2e/sdk/internal/wire"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// HomeEnv is the environment variable the core sets to its state
// directory (the user's E2E_HOME), so a backend can label what it makes
// with the e2e state that owns it (and Clean of one state directory leaves
// another's alone).
const HomeEnv = "E2E_HOME"

// HomeDetail is the key of Cluster.Details under which a backend that
// labels what it makes with HomeEnv reports that state directory from Get
// and List, so that `e2e list` can say whose a cluster it has no record of
// is (another user's, another test run's).
const HomeDetail = "e2e_home"

// StateHomeEnv is the name the core used for HomeEnv before; it still sets
// it, for plugins built then.
//
// Deprecated: read HomeEnv.
const StateHomeEnv = "E2E_STATE_HOME"

// grpcPlugin is go-plugin's glue on the plugin's side: it serves a Backend.
// The core's side is package host.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	server *server
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	backendv1.RegisterBackendServer(s, p.server)
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("the SDK serves backends; package host is the client")
}

// ServeOption changes how Serve runs.
type ServeOption func(*serveConfig)

type serveConfig struct {
	commands map[string]Command
}

// Command is a subcommand of the plugin executable run by a person (for
// example building a node image ahead of time). It returns the exit code.
type Command struct {
	Help string
	Run  func(ctx context.Context, args []string) int
}

// WithCommand adds a subcommand that runs when the plugin executable is
// started by hand as `e2e-backend-NAME NAME ARGS...`.
func WithCommand(name string, c Command) ServeOption {
	return func(sc *serveConfig) { sc.commands[name] = c }
}

// Serve runs the backend as a plugin and does not return. Started by e2e,
// it serves the protocol; started by hand, it answers --version and the
// commands given with WithCommand, and otherwise says how it is used.
func Serve(b Backend, opts ...ServeOption) {
	os.Exit(serve(b, os.Args, opts...))
}

func serve(b Backend, args []string, opts ...ServeOption) int {
	sc := &serveConfig{commands: map[string]Command{}}
	for _, o := range opts {
		o(sc)
	}
	info := b.Info()
	if err := checkInfo(info); err != nil {
		fmt.Fprintf(os.Stderr, "%s: invalid backend: %v\n", filepath.Base(args[0]), err)
		return 1
	}
	hs := wire.Handshake(ProtocolVersion)
	if os.Getenv(hs.MagicCookieKey) != hs.MagicCookieValue {
		return runByHand(info, args, sc)
	}

	level := hclog.LevelFromString(os.Getenv(wire.LogLevelEnv))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name: info.Name, Level: level, Output: os.Stderr, JSONFormat: true,
	})
	// stderr is a pipe that e2e reads. Once e2e is gone, a write to it
	// fails with EPIPE, and Go would then kill the process with SIGPIPE
	// (for fds 1 and 2) in the middle of a cleanup; with SIGPIPE
	// delivered to a channel the write only fails. Unlike ignoring it,
	// this leaves SIGPIPE's default to the programs the plugin runs.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopAll := func() { stopOnce.Do(func() { close(stop) }) }
	srv := &server{backend: b, info: info, logger: logger, getenv: os.Getenv, stop: stop}
	go watchParent(parentPID(), time.Second, func() {
		logger.Warn("e2e went away; cancelling work and exiting")
		stopAll()
		waitInflight(srv, StopTimeout)
		os.Exit(1)
	})

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: {wire.PluginName: &grpcPlugin{server: srv}}},
		GRPCServer: func(o []grpc.ServerOption) *grpc.Server {
			o = append(o,
				grpc.ChainUnaryInterceptor(recoverUnary(info.Name, logger)),
				grpc.ChainStreamInterceptor(recoverStream(info.Name, logger)))
			return grpc.NewServer(o...)
		},
		Logger: machineryLogger{logger},
	})
	// The server stopped (the core shut it down): let running calls finish
	// their cleanup before the process exits.
	stopAll()
	waitInflight(srv, StopTimeout)
	return 0
}

// machineryLogger keeps go-plugin's own debug and info messages
// (configuring mTLS, the plugin's address) at trace level: e2e -vv shows
// the backend's debug logs, and only -vvv the plugin machinery's.
type machineryLogger struct{ hclog.Logger }

func (l machineryLogger) Debug(msg string, args ...any) { l.Logger.Trace(msg, args...) }
func (l machineryLogger) Info(msg string, args ...any)  { l.Logger.Trace(msg, args...) }
func (l machineryLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Debug || level == hclog.Info {
		level = hclog.Trace
	}
	l.Logger.Log(level, msg, args...)
}

func waitInflight(s *server, limit time.Duration) {
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(limit):
	}
}

// parentPID is the pid of the e2e process that started the plugin: the one
// it names in ParentPIDEnv, or, from an older core, the parent now. A core
// that died before this runs left the plugin re-parented already; with the
// named pid, watchParent still sees that its parent is not e2e.
func parentPID() int {
	if pid, err := strconv.Atoi(os.Getenv(wire.ParentPIDEnv)); err == nil && pid > 0 {
		return pid
	}
	return os.Getppid()
}

// watchParent calls gone once the process that started the plugin has died
// (the plugin is then re-parented), so no plugin outlives e2e.
func watchParent(ppid int, every time.Duration, gone func()) {
	for {
		time.Sleep(every)
		if os.Getppid() != ppid {
			gone()
			return
		}
	}
}

func checkInfo(info Info) error {
	if info.Name == "" {
		return fmt.Errorf("Info().Name is empty")
	}
	if !optionName.MatchString(strings.ReplaceAll(info.Name, "-", "_")) {
		return fmt.Errorf("backend name %q must be lower case letters, digits, - and _", info.Name)
	}
	if info.Version == "" {
		return fmt.Errorf("Info().Version is empty (set it with -ldflags)")
	}
	return info.Options.Check()
}

// runByHand is the plugin executable started by a person: it answers
// --version and the WithCommand commands, and otherwise says what it is
// and how it is used (exit 0 for --help or -h, 2 for anything else given,
// 1 for nothing given).
func runByHand(info Info, args []string, sc *serveConfig) int {
	self := filepath.Base(args[0])
	help := false
	if len(args) > 1 {
		switch args[1] {
		case "--help", "-help", "-h", "help":
			help = true
		case "--version", "-version", "version":
			fmt.Printf("%s %s (protocol %d", self, info.Version, ProtocolVersion)
			if info.Commit != "" {
				fmt.Printf(", commit %s", info.Commit)
			}
			fmt.Println(")")
			return 0
		}
		if c, ok := sc.commands[args[1]]; ok {
			return c.Run(context.Background(), args[2:])
		}
	}
	// Asked for, the usage is the output; otherwise it explains a mistake.
	w := os.Stderr
	if help {
		w = os.Stdout
	}
	fmt.Fprintf(w, "%s is the %q backend plugin of e2e; e2e starts it itself.\n", self, info.Name)
	fmt.Fprintf(w, "Use it with: e2e create --backend %s (see: e2e plugin info %s)\n", info.Name, info.Name)
	fmt.Fprintf(w, "Install it with: e2e plugin install %s\n", executable(args[0]))
	fmt.Fprintf(w, "Run by hand: %s --version", self)
	for _, name := range slices.Sorted(maps.Keys(sc.commands)) {
		c := sc.commands[name]
		fmt.Fprintf(w, " | %s %s (%s)", self, name, c.Help)
	}
	fmt.Fprintln(w)
	switch {
	case help:
		return 0
	case len(args) > 1:
		return 2
	}
	return 1
}

// executable is the absolute path of the running plugin, for a command a
// user can paste from anywhere; arg0 made absolute when the system cannot
// say.
func executable(arg0 string) string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	if p, err := filepath.Abs(arg0); err == nil {
		return p
	}
	return arg0
}
