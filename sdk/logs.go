package sdk

import (
	"context"
	"fmt"
	"io"
	"regexp"

	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NodeLogger is implemented by backends that keep a record of a node of
// their own, beside what runs on it: a container's inspect output and
// console log (docker logs), an instance's console output. `e2e logs` (and
// the Go API's Cluster.CollectLogs) put it in the logs bundle, next to the
// node's journal that the core collects over SSH; implementing it sets
// node_logs in `e2e plugin info`.
type NodeLogger interface {
	// NodeLogs writes the backend's view of one node (node is a Node.Name
	// the backend returned) into files, one file per record, named with
	// LogFiles.File. It is called for nodes in any state: a stopped node's
	// console log is often what explains it. It returns ErrNotFound
	// (wrapped or not) when the node does not exist.
	NodeLogs(ctx context.Context, ref ClusterRef, node string, files LogFiles) error
}

// LogFiles receives the files of a node's logs (NodeLogger).
type LogFiles interface {
	// File returns the writer of the file of that base name (see
	// ValidLogFileName), made empty on first use; a second call with the
	// same name appends. A name that is not valid is an error.
	File(name string) (io.Writer, error)
}

// logFileName is what a file of a node's logs may be called.
var logFileName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$`)

// ValidLogFileName checks the name of a file of a node's logs: 1 to 100
// letters, digits, '.', '_' and '-', not starting with '.' or '-', so it
// is a plain file name in every bundle. The SDK refuses other names, and
// the core checks them again.
func ValidLogFileName(name string) error {
	if !logFileName.MatchString(name) {
		return fmt.Errorf("invalid log file name %q: use 1 to 100 letters, digits, '.', '_' or '-', not starting with '.' or '-'", name)
	}
	return nil
}

// logChunkSize bounds the data of one LogChunk message, well under gRPC's
// default 4 MiB message limit.
const logChunkSize = 256 << 10

// streamFiles sends the files a NodeLogger writes as LogChunk messages.
type streamFiles struct {
	stream grpc.ServerStreamingServer[backendv1.LogChunk]
}

func (f streamFiles) File(name string) (io.Writer, error) {
	if err := ValidLogFileName(name); err != nil {
		return nil, err
	}
	// An empty first piece makes the file exist even if nothing is
	// written to it.
	if err := f.stream.Send(&backendv1.LogChunk{Name: name}); err != nil {
		return nil, err
	}
	return logFileWriter{stream: f.stream, name: name}, nil
}

type logFileWriter struct {
	stream grpc.ServerStreamingServer[backendv1.LogChunk]
	name   string
}

func (w logFileWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		piece := p[:min(len(p), logChunkSize)]
		if err := w.stream.Send(&backendv1.LogChunk{Name: w.name, Data: append([]byte(nil), piece...)}); err != nil {
			return n, err
		}
		n += len(piece)
		p = p[len(piece):]
	}
	return n, nil
}

func (s *server) NodeLogs(req *backendv1.NodeLogsRequest, stream grpc.ServerStreamingServer[backendv1.LogChunk]) error {
	ctx, done := s.begin(stream.Context())
	defer done()
	nl, ok := s.backend.(NodeLogger)
	if !ok {
		return status.Errorf(codes.Unimplemented, "the %s backend keeps no logs of its nodes", s.info.Name)
	}
	ref, err := s.ref(req.GetRef())
	if err != nil {
		return toStatus(err)
	}
	return toStatus(nl.NodeLogs(ctx, ref, req.GetNode(), streamFiles{stream: stream}))
}
