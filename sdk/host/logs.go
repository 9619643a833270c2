package host

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
)

// NodeLogs asks the plugin for its own view of a node (node is a
// sdk.Node.Name) and writes each file it sends to the writer open returns
// for the file's name; open is called once per name, and names are checked
// with sdk.ValidLogFileName first (a plugin that sends another name fails
// the call). Only for backends whose Description.Calls.NodeLogs is set
// (others answer with a *RemoteError of code Unimplemented); the error
// wraps sdk.ErrNotFound when the node does not exist.
func (c *Client) NodeLogs(ctx context.Context, ref ClusterRef, node string, open func(name string) (io.Writer, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.NodeLogs(ctx, &backendv1.NodeLogsRequest{Ref: ref.proto(), Node: node})
	if err != nil {
		return fromStatus(err)
	}
	files := map[string]io.Writer{}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fromStatus(err)
		}
		name := chunk.GetName()
		w, ok := files[name]
		if !ok {
			if err := sdk.ValidLogFileName(name); err != nil {
				return fmt.Errorf("the plugin sent a log file with an %w", err)
			}
			if w, err = open(name); err != nil {
				return err
			}
			files[name] = w
		}
		if _, err := w.Write(chunk.GetData()); err != nil {
			return err
		}
	}
}
