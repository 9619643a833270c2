// Command e2e-backend-future stands in for a plugin built for a protocol
// major this e2e does not speak. It uses go-plugin directly, as a future
// SDK would; e2e's tests check the error a user gets.
package main

import (
	"context"

	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/host"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

type futurePlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (futurePlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }
func (futurePlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

func main() {
	hs := host.Handshake()
	hs.ProtocolVersion = sdk.ProtocolVersion + 1
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion + 1: {host.PluginName: futurePlugin{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
