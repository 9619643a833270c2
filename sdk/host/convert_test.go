package host

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestClusterFromProto reads what plugins of every SDK send: a plugin from
// before node states sends none (running), one from before the transport
// field says "exec" in details["transport"], and a later protocol minor
// may send values this build does not know.
func TestClusterFromProto(t *testing.T) {
	for _, tt := range []struct {
		name          string
		in            *backendv1.Cluster
		wantTransport sdk.Transport
		wantState     sdk.NodeState
	}{
		{"current exec", &backendv1.Cluster{Id: "x", Transport: backendv1.Transport_TRANSPORT_EXEC,
			Nodes: []*backendv1.Node{{Name: "n", State: backendv1.NodeState_NODE_STATE_STOPPED}}}, sdk.TransportExec, sdk.NodeStopped},
		{"current ssh", &backendv1.Cluster{Id: "x", Transport: backendv1.Transport_TRANSPORT_SSH,
			Details: map[string]string{"transport": "exec"}, Nodes: []*backendv1.Node{{Name: "n"}}}, sdk.TransportSSH, ""},
		{"before the transport field: exec in details", &backendv1.Cluster{Id: "x", Details: map[string]string{"transport": "exec"},
			Nodes: []*backendv1.Node{{Name: "n", State: backendv1.NodeState_NODE_STATE_RUNNING}}}, sdk.TransportExec, sdk.NodeRunning},
		{"before the transport field: ssh in details", &backendv1.Cluster{Id: "x", Details: map[string]string{"transport": "ssh"},
			Nodes: []*backendv1.Node{{Name: "n"}}}, sdk.TransportSSH, ""},
		{"an unknown transport in details stays a detail", &backendv1.Cluster{Id: "x", Details: map[string]string{"transport": "telnet"},
			Nodes: []*backendv1.Node{{Name: "n"}}}, "", ""},
		{"before node states", &backendv1.Cluster{Id: "x", Nodes: []*backendv1.Node{{Name: "n"}}}, "", ""},
		{"a later minor's values", &backendv1.Cluster{Id: "x", Transport: backendv1.Transport(9),
			Nodes: []*backendv1.Node{{Name: "n", State: backendv1.NodeState(42)}}}, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The detail was the signal when the field was not sent; it then
			// moves to the field. Otherwise it stays what it is, a detail.
			_, had := tt.in.GetDetails()["transport"]
			signal := tt.in.GetTransport() == backendv1.Transport_TRANSPORT_UNSPECIFIED && tt.wantTransport != ""
			got := clusterFromProto(tt.in)
			if _, kept := got.Details["transport"]; kept != (had && !signal) {
				t.Errorf("details %v: the transport detail is kept only when it was not the signal", got.Details)
			}
			if got.Transport != tt.wantTransport || got.Nodes[0].State != tt.wantState {
				t.Errorf("transport %q, state %q; want %q, %q", got.Transport, got.Nodes[0].State, tt.wantTransport, tt.wantState)
			}
			if !got.Nodes[0].State.Running() && tt.wantState == "" {
				t.Errorf("an unsent state does not read as running")
			}
		})
	}
	if got := clusterFromProto(nil); got != nil {
		t.Errorf("clusterFromProto(nil) = %v", got)
	}
}

// TestDescriptionFromProto: the capabilities of the wire become Calls and
// the facts of sdk.Info, as for a plugin of any SDK.
func TestDescriptionFromProto(t *testing.T) {
	d := descriptionFromProto(&backendv1.DescribeResponse{
		Name: "old", Version: "0.1", Protocol: 1,
		Capabilities: &backendv1.Capabilities{Destroy: true, TracksClusters: true, VerifySsh: true,
			InstallMethods: []backendv1.InstallMethod{backendv1.InstallMethod_INSTALL_METHOD_PATH, backendv1.InstallMethod(7)}},
		Options: []*backendv1.OptionSpec{
			{Name: "memory", Type: backendv1.OptionType_OPTION_TYPE_INT, DefaultJson: "2048"},
			{Name: "future", Type: backendv1.OptionType(99)},
		},
	})
	if want := (Calls{Destroy: true, List: true}); d.Calls != want {
		t.Errorf("calls = %+v, want %+v", d.Calls, want)
	}
	if !d.NodesRunSSHD || !reflect.DeepEqual(d.InstallMethods, []sdk.InstallMethod{sdk.InstallFromPath}) {
		t.Errorf("facts: %v %v", d.NodesRunSSHD, d.InstallMethods)
	}
	if d.Options[0].Type != sdk.TypeInt || d.Options[0].Default.(interface{ String() string }).String() != "2048" {
		t.Errorf("option %+v", d.Options[0])
	}
	if d.Options[1].Type != "99" {
		t.Errorf("an option type of a later minor is shown as %q", d.Options[1].Type)
	}
}

// TestFromStatus covers what does not come from a backend of this SDK:
// statuses without details, and errors that are no status at all.
func TestFromStatus(t *testing.T) {
	if err := fromStatus(nil); err != nil {
		t.Errorf("fromStatus(nil) = %v", err)
	}
	plain := errors.New("not a status")
	if got := fromStatus(plain); got != plain {
		t.Errorf("fromStatus of a non-status error = %v, want it unchanged", got)
	}
	// The SDK's own InvalidArgument statuses carry no diagnostics; they still
	// come back as a DiagnosticsError with the message.
	got := fromStatus(status.Error(codes.InvalidArgument, "node counts cannot be negative"))
	var de *sdk.DiagnosticsError
	if !errors.As(got, &de) {
		t.Fatalf("got %T %v, want *sdk.DiagnosticsError", got, got)
	}
	want := []sdk.Diagnostic{{Severity: sdk.SeverityError, Summary: "node counts cannot be negative"}}
	if !reflect.DeepEqual(de.Diagnostics, want) {
		t.Errorf("diagnostics = %#v, want %#v", de.Diagnostics, want)
	}
	// A plugin from before Destroy was optional refused it as a failed
	// precondition; any code is passed on with the plugin's message.
	got = fromStatus(status.Error(codes.FailedPrecondition, "the existing backend cannot destroy clusters"))
	var re *RemoteError
	if !errors.As(got, &re) || re.Code != codes.FailedPrecondition || got.Error() != "the existing backend cannot destroy clusters" {
		t.Errorf("got %T %v", got, got)
	}
}

// Times travel as RFC 3339; an absent one (an older plugin, or a cluster
// without a lifespan) is the zero time.
func TestClusterTimesFromProto(t *testing.T) {
	got := clusterFromProto(&backendv1.Cluster{Id: "x", CreatedAt: "2026-11-30T10:30:45.5Z", ExpiresAt: "2026-11-30T11:30:45Z"})
	if want := time.Date(2026, 11, 30, 10, 30, 45, 5e8, time.UTC); !got.CreatedAt.Equal(want) {
		t.Errorf("CreatedAt %v, want %v", got.CreatedAt, want)
	}
	if want := time.Date(2026, 11, 30, 11, 30, 45, 0, time.UTC); !got.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt %v, want %v", got.ExpiresAt, want)
	}
	if got := clusterFromProto(&backendv1.Cluster{Id: "x"}); !got.CreatedAt.IsZero() || !got.ExpiresAt.IsZero() {
		t.Errorf("absent times: %v, %v", got.CreatedAt, got.ExpiresAt)
	}
}
