package sdk

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// nodeLogger writes a big console log, an empty file, and asks for a bad
// name when told to.
type nodeLogger struct {
	minimalBackend
	badName string
}

func (b nodeLogger) NodeLogs(_ context.Context, ref ClusterRef, node string, files LogFiles) error {
	if node == "gone" {
		return ErrNotFound
	}
	if b.badName != "" {
		_, err := files.File(b.badName)
		return err
	}
	w, err := files.File("console.log")
	if err != nil {
		return err
	}
	if _, err := w.Write(bytes.Repeat([]byte("x"), 3*logChunkSize+5)); err != nil {
		return err
	}
	_, err = files.File("empty.json")
	return err
}

// chunkStream collects the LogChunks a handler sends.
type chunkStream struct {
	grpc.ServerStream
	chunks []*backendv1.LogChunk
}

func (*chunkStream) Context() context.Context { return context.Background() }
func (s *chunkStream) Send(c *backendv1.LogChunk) error {
	s.chunks = append(s.chunks, proto.Clone(c).(*backendv1.LogChunk))
	return nil
}

func TestNodeLogs(t *testing.T) {
	ref := &backendv1.ClusterRef{ClusterId: "x"}
	for _, tt := range []struct {
		name    string
		backend Backend
		node    string
		want    map[string]int // file name to size
		code    codes.Code
		msg     string
	}{
		{name: "files in pieces", backend: nodeLogger{}, node: "n0", want: map[string]int{"console.log": 3*logChunkSize + 5, "empty.json": 0}},
		{name: "node not found", backend: nodeLogger{}, node: "gone", code: codes.NotFound},
		{name: "name with a slash", backend: nodeLogger{badName: "../escape"}, node: "n0", code: codes.Unknown, msg: `invalid log file name "../escape"`},
		{name: "hidden name", backend: nodeLogger{badName: ".profile"}, node: "n0", code: codes.Unknown, msg: "invalid log file name"},
		{name: "not a NodeLogger", backend: minimalBackend{}, node: "n0", code: codes.Unimplemented, msg: "the minimal backend keeps no logs of its nodes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &server{backend: tt.backend, info: Info{Name: "minimal"}}
			stream := &chunkStream{}
			err := s.NodeLogs(&backendv1.NodeLogsRequest{Ref: ref, Node: tt.node}, stream)
			if tt.code != codes.OK {
				if status.Code(err) != tt.code || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("error %v, want %v containing %q", err, tt.code, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, c := range stream.chunks {
				if len(c.GetData()) > logChunkSize {
					t.Errorf("a piece of %d bytes, more than %d", len(c.GetData()), logChunkSize)
				}
				got[c.GetName()] += len(c.GetData())
			}
			if len(got) != len(tt.want) {
				t.Errorf("files %v, want %v", got, tt.want)
			}
			for name, size := range tt.want {
				if n, ok := got[name]; !ok || n != size {
					t.Errorf("%s: %d bytes (sent: %v), want %d", name, n, ok, size)
				}
			}
		})
	}
}

func TestNodeLoggerCapability(t *testing.T) {
	s := &server{backend: nodeLogger{}, info: minimalBackend{}.Info()}
	resp, err := s.Describe(context.Background(), &backendv1.DescribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(resp.GetCapabilities(), &backendv1.Capabilities{NodeLogs: true}) {
		t.Errorf("capabilities = %v, want node_logs only", resp.GetCapabilities())
	}
}
