package main

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/sdk"
)

// memFiles keeps the files of a node's logs in memory.
type memFiles map[string]*strings.Builder

func (m memFiles) File(name string) (io.Writer, error) {
	if err := sdk.ValidLogFileName(name); err != nil {
		return nil, err
	}
	if m[name] == nil {
		m[name] = &strings.Builder{}
	}
	return m[name], nil
}

// NodeLogs writes each instance's console output, decoded, as console.log,
// found by instance id or node id; an unknown node is ErrNotFound.
func TestNodeLogsConsoleOutput(t *testing.T) {
	f := newFake()
	b := fakeBackend(f)
	c, err := b.Create(t.Context(), createReq(t, 1, 1, 0, nil), &reporter{})
	if err != nil {
		t.Fatal(err)
	}
	ref := sdk.ClusterRef{ClusterID: "unit", UID: c.UID, Options: options(t, nil)}
	for _, tt := range []struct {
		node, instance string
	}{
		{c.Nodes[0].Name, c.Nodes[0].Name},
		{"agent_0", c.Nodes[1].Name},
	} {
		files := memFiles{}
		if err := b.NodeLogs(t.Context(), ref, tt.node, files); err != nil {
			t.Fatalf("%s: %v", tt.node, err)
		}
		if got := files["console.log"]; got == nil || got.String() != "console of "+tt.instance+"\n" || len(files) != 1 {
			t.Errorf("%s: files %v, want console.log with the console of %s", tt.node, files, tt.instance)
		}
	}
	if err := b.NodeLogs(t.Context(), ref, "agent_7", memFiles{}); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("unknown node: %v, want ErrNotFound", err)
	}
}
