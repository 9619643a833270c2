// Package host is the e2e core's side of the backend protocol; backend
// authors never import it (they write with package sdk).
//
// It starts nothing itself: the core's plugin host launches a plugin with
// go-plugin, using ClientConfig, and dispenses PluginName to get a *Client. The Client returns the SDK's own types (sdk.Cluster,
// sdk.Node, sdk.Diagnostic, sdk.BaseConfig...), so the core and the backend
// speak one vocabulary; only where the core holds something in another
// form than a backend receives it (options as JSON rather than parsed) does
// it have a type of its own (ClusterRef, CreateRequest).
//
// It is a package of the SDK's module, not an internal package, only
// because the core is another module; it is internal to e2e and may change
// with any commit.
package host

import (
	"context"
	"errors"
	"os"
	"os/exec"

	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
	"github.com/e2e-tool/e2e/sdk/internal/wire"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// PluginName is the name the backend service is dispensed under.
const PluginName = wire.PluginName

// LogLevelEnv is the environment variable the core sets, in a plugin's
// environment, to the log level it wants from the plugin ("warn", "info",
// "debug").
const LogLevelEnv = wire.LogLevelEnv

// ParentPIDEnv is the environment variable the core sets, in a plugin's
// environment, to its own pid: the plugin exits once that process is no
// longer its parent.
const ParentPIDEnv = wire.ParentPIDEnv

// Handshake is the go-plugin handshake of e2e backends, for the protocol
// major sdk.ProtocolVersion.
func Handshake() plugin.HandshakeConfig { return wire.Handshake(sdk.ProtocolVersion) }

// ClientConfig returns go-plugin's settings for starting cmd as an e2e
// backend plugin, as the core and sdktest do: Handshake, ClientPlugins,
// gRPC only (left empty, go-plugin would allow net/rpc only) and AutoMTLS.
// The plugin makes its unix socket in sockDir, a short directory (socket
// paths are limited to 108 bytes) that the caller made and removes: cmd.Env
// gets PLUGIN_UNIX_SOCKET_DIR, after os.Environ() when cmd.Env is nil.
// go-plugin's own UnixSocketConfig.TempDir reaches the plugin only with a
// RunnerFunc; without this the socket would be made in the system's
// temporary directory and stay there when the plugin is killed. The caller
// sets the rest (logger, stderr, timeouts, SecureConfig).
func ClientConfig(cmd *exec.Cmd, sockDir string) *plugin.ClientConfig {
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, plugin.EnvUnixSocketDir+"="+sockDir)
	return &plugin.ClientConfig{
		HandshakeConfig:  Handshake(),
		VersionedPlugins: ClientPlugins(),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Cmd:              cmd,
	}
}

// ClientPlugins is the VersionedPlugins map a host gives go-plugin: every
// protocol major this build speaks, keyed by version. Dispensing
// PluginName from it gives a *Client.
func ClientPlugins() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{sdk.ProtocolVersion: {PluginName: grpcPlugin{}}}
}

// grpcPlugin is go-plugin's glue on the core's side: it makes a *Client of
// the connection. The plugin's side is in package sdk.
type grpcPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (grpcPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("package host is the client of backends; package sdk serves them")
}

func (grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return &Client{rpc: backendv1.NewBackendClient(cc)}, nil
}
