package host

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/e2e-tool/e2e/sdk"
	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
	"github.com/e2e-tool/e2e/sdk/internal/wire"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// This file is the core's half of the translation between the protocol and
// the SDK's types; the plugin's half is in package sdk. It also reads what
// plugins built with an older SDK send (see clusterFromProto).

// Description is what Describe returns, as the core sees it: the backend's
// sdk.Info (name, version, options, the facts about its nodes) and the
// calls it serves.
type Description struct {
	sdk.Info
	// Protocol is the protocol major the plugin speaks.
	Protocol int
	// Calls are the optional calls the plugin serves.
	Calls Calls
}

// Calls says which optional calls a plugin serves: for a plugin of this
// SDK, which of the SDK's optional interfaces its backend implements.
type Calls struct {
	// Destroy: sdk.Destroyer.
	Destroy bool
	// List: sdk.Lister; the backend finds its clusters itself (the
	// protocol's tracks_clusters). Without it the core keeps the record
	// and never lists.
	List bool
	// Exec: sdk.Executor, a transport of the backend's own.
	Exec bool
	// Clean: sdk.Cleaner, removing leftovers.
	Clean bool
	// StartStop: sdk.StartStopper.
	StartStop bool
	// NodeLogs: sdk.NodeLogger, the backend's own view of a node.
	NodeLogs bool
	// Doctor: sdk.Doctor, checks of what the backend needs.
	Doctor bool
}

func descriptionFromProto(resp *backendv1.DescribeResponse) Description {
	caps := resp.GetCapabilities()
	d := Description{
		Info: sdk.Info{Name: resp.GetName(), Version: resp.GetVersion(), Commit: resp.GetCommit(), Summary: resp.GetSummary(),
			NodesRunSSHD: caps.GetVerifySsh()},
		Protocol: int(resp.GetProtocol()),
		Calls: Calls{Destroy: caps.GetDestroy(), List: caps.GetTracksClusters(), Exec: caps.GetExec(),
			Clean: caps.GetClean(), StartStop: caps.GetStartStop(), NodeLogs: caps.GetNodeLogs(), Doctor: caps.GetDoctor()},
	}
	for _, m := range caps.GetInstallMethods() {
		if name := wire.Name(m); name != "" {
			d.InstallMethods = append(d.InstallMethods, sdk.InstallMethod(name))
		}
	}
	for _, spec := range resp.GetOptions() {
		t := sdk.OptionType(wire.Name(spec.GetType()))
		if t == "" {
			// A type of a later protocol minor: shown as the plugin named it.
			t = sdk.OptionType(spec.GetType().String())
		}
		o := sdk.Option{Name: spec.GetName(), Type: t, Help: spec.GetHelp(),
			Required: spec.GetRequired(), Secret: spec.GetSecret(), Env: spec.GetEnv()}
		if spec.GetDefaultJson() != "" {
			var v any
			dec := json.NewDecoder(strings.NewReader(spec.GetDefaultJson()))
			dec.UseNumber()
			if dec.Decode(&v) == nil {
				o.Default = v
			}
		}
		d.Options = append(d.Options, o)
	}
	return d
}

// clusterFromProto reads a cluster. A node state the plugin did not send
// (a plugin from before states) is empty, which means running. A transport
// it did not send is read from details["transport"], where plugins from
// before the field said "ssh" or "exec"; that detail then moves to the
// field, so it is not shown twice.
func clusterFromProto(pc *backendv1.Cluster) *sdk.Cluster {
	if pc == nil {
		return nil
	}
	c := &sdk.Cluster{ID: pc.GetId(), UID: pc.GetUid(), Record: pc.GetRecord(), Details: pc.GetDetails(),
		Transport: sdk.Transport(wire.Name(pc.GetTransport()))}
	if t := sdk.Transport(c.Details["transport"]); c.Transport == "" && (t == sdk.TransportExec || t == sdk.TransportSSH) {
		c.Transport = t
		delete(c.Details, "transport")
	}
	if t, err := time.Parse(time.RFC3339Nano, pc.GetCreatedAt()); err == nil {
		c.CreatedAt = t
	}
	if t, err := time.Parse(time.RFC3339Nano, pc.GetExpiresAt()); err == nil {
		c.ExpiresAt = t
	}
	for _, n := range pc.GetNodes() {
		c.Nodes = append(c.Nodes, sdk.Node{
			Role: sdk.Role(wire.Name(n.GetRole())), Index: int(n.GetIndex()), Name: n.GetName(),
			Hostname: n.GetHostname(), PrivateAddress: n.GetPrivateAddress(), PublicAddress: n.GetPublicAddress(),
			SSH:      sdk.SSHEndpoint{Host: n.GetSsh().GetHost(), Port: int(n.GetSsh().GetPort()), User: n.GetSsh().GetUser()},
			HostKeys: n.GetHostKeys(), State: sdk.NodeState(wire.Name(n.GetState())),
		})
	}
	return c
}

func diagFromProto(d *backendv1.Diagnostic) sdk.Diagnostic {
	sev := sdk.SeverityError
	if d.GetSeverity() == backendv1.Severity_SEVERITY_WARNING {
		sev = sdk.SeverityWarning
	}
	return sdk.Diagnostic{Severity: sev, Option: d.GetOption(), Summary: d.GetSummary(), Detail: d.GetDetail()}
}

// RemoteError is an error a plugin returned, with its message as the plugin
// wrote it (no gRPC decoration).
type RemoteError struct {
	// Code is the gRPC code: Unknown for a backend's own error, Internal
	// for a panic or a bug the SDK caught, Unimplemented for an optional
	// call the backend does not implement.
	Code    codes.Code
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// fromStatus turns a gRPC error back into the error the backend returned:
// *sdk.DiagnosticsError, sdk.ErrNotFound, context errors, or *RemoteError.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.InvalidArgument:
		de := &sdk.DiagnosticsError{}
		for _, d := range st.Details() {
			if pd, ok := d.(*backendv1.Diagnostic); ok {
				de.Diagnostics = append(de.Diagnostics, diagFromProto(pd))
			}
		}
		if len(de.Diagnostics) == 0 {
			de.Diagnostics = []sdk.Diagnostic{{Severity: sdk.SeverityError, Summary: st.Message()}}
		}
		return de
	case codes.NotFound:
		return &remoteSentinel{msg: st.Message(), target: sdk.ErrNotFound}
	case codes.Canceled:
		return &remoteSentinel{msg: st.Message(), target: context.Canceled}
	case codes.DeadlineExceeded:
		return &remoteSentinel{msg: st.Message(), target: context.DeadlineExceeded}
	}
	return &RemoteError{Code: st.Code(), Message: st.Message()}
}

// remoteSentinel keeps the plugin's message as it is while errors.Is still
// matches the sentinel it stands for.
type remoteSentinel struct {
	msg    string
	target error
}

func (e *remoteSentinel) Error() string { return e.msg }
func (e *remoteSentinel) Unwrap() error { return e.target }
