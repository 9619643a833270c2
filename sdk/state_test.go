package sdk

import (
	"context"
	"strings"
	"testing"

	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A plugin built before node states existed sends none: the core must read
// its nodes as running.
func TestNodeStateFromProto(t *testing.T) {
	tests := []struct {
		wire        backendv1.NodeState
		want        NodeState
		wantRunning bool
	}{
		{backendv1.NodeState_NODE_STATE_UNSPECIFIED, "", true},
		{backendv1.NodeState_NODE_STATE_RUNNING, NodeRunning, true},
		{backendv1.NodeState_NODE_STATE_STOPPED, NodeStopped, false},
		{backendv1.NodeState_NODE_STATE_MISSING, NodeMissing, false},
		// A state from a later protocol minor this SDK does not know.
		{backendv1.NodeState(42), "", true},
	}
	for _, tt := range tests {
		got := stateFromProto(tt.wire)
		if got != tt.want || got.Running() != tt.wantRunning {
			t.Errorf("stateFromProto(%v) = %q (running %v), want %q (running %v)", tt.wire, got, got.Running(), tt.want, tt.wantRunning)
		}
	}
}

type plainBackend struct{}

func (plainBackend) Info() Info { return Info{Name: "plain", Version: "1"} }
func (plainBackend) Create(context.Context, CreateRequest, Reporter) (*Cluster, error) {
	return nil, nil
}
func (plainBackend) Get(context.Context, ClusterRef) (*Cluster, error)   { return nil, ErrNotFound }
func (plainBackend) List(context.Context, Options) ([]*Cluster, error)   { return nil, nil }
func (plainBackend) Destroy(context.Context, ClusterRef, Reporter) error { return nil }

type startStopBackend struct{ plainBackend }

func (startStopBackend) Start(context.Context, ClusterRef, Reporter) error { return nil }
func (startStopBackend) Stop(context.Context, ClusterRef, Reporter) error  { return nil }

// The start_stop capability comes from the interface, as exec and clean
// do: a backend cannot claim what it does not implement.
func TestDescribeStartStop(t *testing.T) {
	for _, tt := range []struct {
		name    string
		backend Backend
		want    bool
	}{
		{"without StartStopper", plainBackend{}, false},
		{"with StartStopper", startStopBackend{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &server{backend: tt.backend, info: tt.backend.Info()}
			resp, err := s.Describe(context.Background(), &backendv1.DescribeRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.GetCapabilities().GetStartStop(); got != tt.want {
				t.Errorf("start_stop = %v, want %v", got, tt.want)
			}
			if got := infoFromProto(resp).StartStop; got != tt.want {
				t.Errorf("Description.StartStop = %v, want %v", got, tt.want)
			}
		})
	}
}

// A state the protocol cannot carry would travel as unspecified and read
// as running: the SDK refuses it as the plugin's bug.
func TestCheckStates(t *testing.T) {
	s := &server{info: Info{Name: "odd"}}
	for _, tt := range []struct {
		state NodeState
		ok    bool
	}{
		{"", true}, {NodeRunning, true}, {NodeStopped, true}, {NodeMissing, true}, {"paused", false},
	} {
		err := s.checkStates(&Cluster{ID: "x", Nodes: []Node{{Name: "n0"}, {Name: "n1", State: tt.state}}})
		if tt.ok {
			if err != nil {
				t.Errorf("state %q: %v", tt.state, err)
			}
			continue
		}
		if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), `node n1 in state "paused"`) ||
			!strings.Contains(err.Error(), "the odd backend") {
			t.Errorf("state %q: %v, want an Internal error naming the backend, node and state", tt.state, err)
		}
	}
}
